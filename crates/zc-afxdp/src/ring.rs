//! The four AF_XDP rings as single-producer/single-consumer cursors.
//!
//! libxdp's `xsk_ring_*` helpers are `static inline` and cannot be linked
//! (`docs/design.md` §3), so the rings are implemented here over the kernel ABI: a
//! shared `producer` and `consumer` index (free-running `u32`, wrapping), a
//! `flags` word, and a power-of-two array of entries indexed by `index & mask`.
//!
//! Each side keeps a cached copy of the other side's index and re-reads it
//! (Acquire) only when the cache says the ring is full or empty; its own index
//! is published (Release) after the entries are written or read. That is the
//! whole memory-ordering contract with the kernel: entries written before a
//! Release store of `producer` are visible after an Acquire load of it, and an
//! entry is not overwritten before the consumer's Release store of `consumer`
//! says it was read.
//!
//! Reservations and peeks are transactions (as in xdpilone): nothing is
//! published until [`Reservation::commit`] / [`Peek::release`]; dropping one
//! unfinished rolls it back. The cursor works on any memory with that layout,
//! so the unit tests run it on heap memory, without a kernel.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where one ring lives: the shared indices, the flags word and the entries.
pub(crate) struct RingPtrs<T> {
    pub producer: *const AtomicU32,
    pub consumer: *const AtomicU32,
    pub flags: *const AtomicU32,
    pub entries: *mut T,
    /// Number of entries, a power of two.
    pub size: u32,
}

/// State common to both ends.
struct Ring<T> {
    p: RingPtrs<T>,
    mask: u32,
}

impl<T: Copy> Ring<T> {
    /// # Safety
    /// The pointers must be valid, aligned and point to one ring's memory
    /// (`size` entries, a power of two) for the life of the returned value, and
    /// this end of the ring must have no other user in this process.
    unsafe fn new(p: RingPtrs<T>) -> Self {
        debug_assert!(p.size.is_power_of_two());
        let mask = p.size - 1;
        Self { p, mask }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: valid for the ring's life (contract of `Ring::new`); atomics
        // may be shared with the kernel or another thread.
        unsafe { &*self.p.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.p.consumer }
    }

    fn flags(&self) -> u32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.p.flags }.load(Ordering::Relaxed)
    }

    fn write(&mut self, index: u32, value: T) {
        let slot = (index & self.mask) as usize;
        // SAFETY: slot < size by the mask; the caller owns this slot (it lies in
        // the range between the published producer and the consumer + size).
        unsafe { self.p.entries.add(slot).write_volatile(value) }
    }

    fn read(&self, index: u32) -> T {
        let slot = (index & self.mask) as usize;
        // SAFETY: slot < size by the mask; the caller only reads slots between
        // the published consumer and the producer it loaded with Acquire.
        unsafe { self.p.entries.add(slot).read_volatile() }
    }
}

/// The producing end of a ring (fill and tx rings from user space).
pub(crate) struct ProdRing<T> {
    ring: Ring<T>,
    /// Our producer index: everything below it is published.
    prod: u32,
    /// The consumer index plus the ring size, as last read.
    cons_end: u32,
}

// SAFETY: the ring memory is owned by whoever owns this end (an mmap or a test
// buffer kept alive alongside it); moving the end to another thread moves that
// exclusive role with it. Not Sync: one producer at a time.
unsafe impl<T: Send> Send for ProdRing<T> {}

impl<T: Copy> ProdRing<T> {
    /// # Safety
    /// As for [`Ring::new`]: valid ring memory for the life of the value, and no
    /// other producer for this ring.
    pub(crate) unsafe fn new(p: RingPtrs<T>) -> Self {
        let size = p.size;
        // SAFETY: forwarded contract.
        let ring = unsafe { Ring::new(p) };
        let prod = ring.producer().load(Ordering::Relaxed);
        let cons_end = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        Self {
            ring,
            prod,
            cons_end,
        }
    }

    /// Entries that can be reserved right now (re-reads the consumer).
    pub(crate) fn free(&mut self) -> u32 {
        self.cons_end = self
            .ring
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.ring.p.size);
        self.cons_end.wrapping_sub(self.prod)
    }

    /// Reserves up to `want` entries; the reservation may be shorter (even empty).
    pub(crate) fn reserve(&mut self, want: u32) -> Reservation<'_, T> {
        let mut free = self.cons_end.wrapping_sub(self.prod);
        if free < want {
            free = self.free();
        }
        let len = free.min(want);
        Reservation {
            start: self.prod,
            len,
            written: 0,
            ring: self,
        }
    }

    /// The ring's flags word (`XDP_RING_NEED_WAKEUP`).
    pub(crate) fn flags(&self) -> u32 {
        self.ring.flags()
    }

    /// Entries published and not yet taken by the consumer.
    pub(crate) fn outstanding(&self) -> u32 {
        self.prod
            .wrapping_sub(self.ring.consumer().load(Ordering::Acquire))
    }
}

/// Entries reserved in a producer ring; published by [`Reservation::commit`],
/// abandoned when dropped uncommitted.
pub(crate) struct Reservation<'r, T: Copy> {
    ring: &'r mut ProdRing<T>,
    start: u32,
    len: u32,
    written: u32,
}

impl<T: Copy> Reservation<'_, T> {
    /// Entries reserved.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Appends one entry; returns false when the reservation is full.
    pub(crate) fn push(&mut self, value: T) -> bool {
        if self.written == self.len {
            return false;
        }
        let index = self.start.wrapping_add(self.written);
        self.ring.ring.write(index, value);
        self.written += 1;
        true
    }

    /// Publishes the entries pushed so far (the rest of the reservation is
    /// returned to the ring) and returns how many.
    pub(crate) fn commit(self) -> u32 {
        let n = self.written;
        let ring = self.ring;
        ring.prod = self.start.wrapping_add(n);
        // Release: the entries written above are visible to whoever reads this index.
        ring.ring.producer().store(ring.prod, Ordering::Release);
        n
    }
}

/// The consuming end of a ring (rx and completion rings from user space).
pub(crate) struct ConsRing<T> {
    ring: Ring<T>,
    /// Our consumer index: everything below it was released.
    cons: u32,
    /// The producer index as last read.
    prod: u32,
}

// SAFETY: as for ProdRing: the end is exclusively owned; not Sync.
unsafe impl<T: Send> Send for ConsRing<T> {}

impl<T: Copy> ConsRing<T> {
    /// # Safety
    /// As for [`Ring::new`]: valid ring memory for the life of the value, and no
    /// other consumer for this ring.
    pub(crate) unsafe fn new(p: RingPtrs<T>) -> Self {
        // SAFETY: forwarded contract.
        let ring = unsafe { Ring::new(p) };
        let cons = ring.consumer().load(Ordering::Relaxed);
        let prod = ring.producer().load(Ordering::Acquire);
        Self { ring, cons, prod }
    }

    /// Entries ready to read right now (re-reads the producer).
    pub(crate) fn available(&mut self) -> u32 {
        self.prod = self.ring.producer().load(Ordering::Acquire);
        self.prod.wrapping_sub(self.cons)
    }

    /// Looks at up to `want` ready entries without releasing them.
    pub(crate) fn peek(&mut self, want: u32) -> Peek<'_, T> {
        let mut ready = self.prod.wrapping_sub(self.cons);
        if ready < want {
            ready = self.available();
        }
        let len = ready.min(want);
        Peek {
            start: self.cons,
            len,
            ring: self,
        }
    }
}

/// Entries peeked from a consumer ring; given back to the producer by
/// [`Peek::release`], left in the ring when dropped unreleased.
pub(crate) struct Peek<'r, T: Copy> {
    ring: &'r mut ConsRing<T>,
    start: u32,
    len: u32,
}

impl<T: Copy> Peek<'_, T> {
    /// Entries peeked.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// The `i`-th entry (`i < len`), copied out of the ring.
    pub(crate) fn get(&self, i: u32) -> Option<T> {
        (i < self.len).then(|| self.ring.ring.read(self.start.wrapping_add(i)))
    }

    /// Releases the first `n` entries (at most `len`) to the producer.
    pub(crate) fn release(self, n: u32) {
        let n = n.min(self.len);
        let ring = self.ring;
        ring.cons = self.start.wrapping_add(n);
        // Release: our reads of those entries happen before the producer reuses them.
        ring.ring.consumer().store(ring.cons, Ordering::Release);
    }
}

/// Ring memory on the heap, laid out like the kernel's, for the unit tests
/// and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
struct HeapRing<T> {
    producer: AtomicU32,
    consumer: AtomicU32,
    flags: AtomicU32,
    entries: Vec<T>,
}

#[cfg(any(test, feature = "fuzzing"))]
impl<T: Copy + Default> HeapRing<T> {
    fn new(size: u32, start: u32) -> Box<Self> {
        Box::new(Self {
            producer: AtomicU32::new(start),
            consumer: AtomicU32::new(start),
            flags: AtomicU32::new(0),
            entries: vec![T::default(); size as usize],
        })
    }

    fn ptrs(&mut self) -> RingPtrs<T> {
        RingPtrs {
            producer: &self.producer,
            consumer: &self.consumer,
            flags: &self.flags,
            entries: self.entries.as_mut_ptr(),
            size: self.entries.len() as u32,
        }
    }

    /// Both ends over this memory.
    fn ends(&mut self) -> (ProdRing<T>, ConsRing<T>) {
        // SAFETY: every caller (the tests below, LoopRing) keeps the Box alive
        // longer than both ends, and creates each end once.
        unsafe { (ProdRing::new(self.ptrs()), ConsRing::new(self.ptrs())) }
    }
}

/// A ring on the heap with both of its ends, for the fuzz targets (feature
/// `fuzzing`): they play the kernel's side of the ring as well as ours.
#[cfg(feature = "fuzzing")]
pub struct LoopRing<T> {
    // The ends come first so they are dropped before the memory they point into.
    prod: ProdRing<T>,
    pub(crate) cons: ConsRing<T>,
    _mem: Box<HeapRing<T>>,
}

#[cfg(feature = "fuzzing")]
impl<T: Copy + Default> LoopRing<T> {
    /// A ring of `size` entries (rounded up to a power of two) with both
    /// indices at `start`.
    pub fn new(size: u32, start: u32) -> Self {
        let size = size.clamp(1, 1 << 16).next_power_of_two();
        let mut mem = HeapRing::new(size, start);
        // The ends point into the boxed memory, which moving the Box does not move.
        let (prod, cons) = mem.ends();
        Self {
            prod,
            cons,
            _mem: mem,
        }
    }

    /// Reserves up to `want` entries, writes as many of `values` as fit, and
    /// publishes them when `commit` (else drops the reservation). Returns how
    /// many were published.
    pub fn produce(&mut self, values: impl IntoIterator<Item = T>, want: u32, commit: bool) -> u32 {
        let mut r = self.prod.reserve(want);
        for v in values {
            if !r.push(v) {
                break;
            }
        }
        if commit {
            r.commit()
        } else {
            0
        }
    }

    /// Peeks up to `want` entries, returns them all, and releases the first `release`.
    pub fn consume(&mut self, want: u32, release: u32) -> Vec<T> {
        let peek = self.cons.peek(want);
        let out = (0..peek.len()).filter_map(|i| peek.get(i)).collect();
        peek.release(release);
        out
    }

    /// Free slots, as the producer sees them.
    pub fn free(&mut self) -> u32 {
        self.prod.free()
    }

    /// Published entries, as the consumer sees them.
    pub fn available(&mut self) -> u32 {
        self.cons.available()
    }

    /// Published entries the consumer has not released, as the producer sees them.
    pub fn outstanding(&self) -> u32 {
        self.prod.outstanding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(p: &mut ProdRing<u64>, values: impl IntoIterator<Item = u64>) -> u32 {
        let values: Vec<u64> = values.into_iter().collect();
        let mut r = p.reserve(values.len() as u32);
        for v in values {
            if !r.push(v) {
                break;
            }
        }
        r.commit()
    }

    fn consume(c: &mut ConsRing<u64>, want: u32) -> Vec<u64> {
        let peek = c.peek(want);
        let out: Vec<u64> = (0..peek.len()).filter_map(|i| peek.get(i)).collect();
        let n = peek.len();
        peek.release(n);
        out
    }

    #[test]
    fn entries_come_out_in_order_and_the_ring_fills_up() {
        let mut mem = HeapRing::<u64>::new(8, 0);
        let (mut p, mut c) = mem.ends();
        assert_eq!(produce(&mut p, 0..5), 5);
        assert_eq!(produce(&mut p, 5..20), 3, "only 3 slots left of 8");
        assert_eq!(p.reserve(1).len(), 0, "full");
        assert_eq!(consume(&mut c, 6), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(produce(&mut p, 100..110), 6);
        assert_eq!(
            consume(&mut c, 100),
            vec![6, 7, 100, 101, 102, 103, 104, 105]
        );
        assert_eq!(c.peek(1).len(), 0, "empty");
    }

    #[test]
    fn indices_wrap_around_u32() {
        let mut mem = HeapRing::<u64>::new(4, u32::MAX - 2);
        let (mut p, mut c) = mem.ends();
        for round in 0..10u64 {
            assert_eq!(
                produce(&mut p, [round * 10, round * 10 + 1, round * 10 + 2]),
                3
            );
            assert_eq!(
                consume(&mut c, 4),
                vec![round * 10, round * 10 + 1, round * 10 + 2]
            );
        }
        assert!(mem.producer.load(Ordering::Relaxed) < 100, "wrapped");
    }

    #[test]
    fn a_dropped_reservation_publishes_nothing() {
        let mut mem = HeapRing::<u64>::new(8, 0);
        let (mut p, mut c) = mem.ends();
        {
            let mut r = p.reserve(4);
            assert!(r.push(1) && r.push(2));
        }
        assert_eq!(c.available(), 0);
        assert_eq!(produce(&mut p, [7]), 1);
        assert_eq!(
            consume(&mut c, 8),
            vec![7],
            "the rolled-back slots were reused"
        );
    }

    #[test]
    fn a_partial_commit_returns_the_unused_slots() {
        let mut mem = HeapRing::<u64>::new(4, 0);
        let (mut p, mut c) = mem.ends();
        let mut r = p.reserve(4);
        assert_eq!(r.len(), 4);
        assert!(r.push(9));
        assert_eq!(r.commit(), 1);
        assert_eq!(p.reserve(4).len(), 3);
        assert_eq!(consume(&mut c, 4), vec![9]);
    }

    #[test]
    fn an_unreleased_peek_leaves_entries_in_place() {
        let mut mem = HeapRing::<u64>::new(4, 0);
        let (mut p, mut c) = mem.ends();
        produce(&mut p, [1, 2, 3]);
        {
            let peek = c.peek(3);
            assert_eq!(peek.get(0), Some(1));
            assert_eq!(peek.get(3), None);
        }
        let peek = c.peek(3);
        peek.release(1);
        assert_eq!(consume(&mut c, 3), vec![2, 3]);
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn one_producer_and_one_consumer_thread_agree() {
        const N: u64 = 200_000;
        let mut mem = HeapRing::<u64>::new(64, 0);
        let (mut p, mut c) = mem.ends();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut next = 0;
                while next < N {
                    let mut r = p.reserve(16);
                    while next < N && r.push(next) {
                        next += 1;
                    }
                    r.commit();
                }
            });
            let mut expect = 0;
            while expect < N {
                let peek = c.peek(32);
                for i in 0..peek.len() {
                    assert_eq!(peek.get(i), Some(expect));
                    expect += 1;
                }
                let n = peek.len();
                peek.release(n);
            }
        });
    }
}
