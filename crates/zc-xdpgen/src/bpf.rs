//! Loading our compiled BPF objects with libbpf, and the pieces of them the
//! generator and the sink use: a program's fd, the `.bss` section mapped into
//! this process, per-CPU counters, and XDP attachment through a BPF link.

use std::ffi::{c_void, CStr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use zc_core::error::{Error, ErrorKind, Result};

/// An ELF image, 8-byte aligned for libelf.
#[repr(C, align(8))]
pub(crate) struct Aligned<T: ?Sized>(pub(crate) T);

/// A zc error for a libbpf call that returned `-errno`.
pub(crate) fn bpf_error(op: &str, rc: i32) -> Error {
    let e = Error::io(op.to_owned(), std::io::Error::from_raw_os_error(-rc));
    match e.kind() {
        ErrorKind::Permission => e.with_fix(
            "loading and running XDP programs needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN): run as root",
        ),
        _ => e,
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub(crate) fn ifindex(name: &str) -> Result<u32> {
    zc_os::ifindex(name).map_err(|e| match e.kind() {
        ErrorKind::NotFound => e.with_fix("list the interfaces with `ip -br link`; a generator must run in the namespace of its sending interface (`Testbed::spawn_in_peer`)"),
        _ => e,
    })
}

/// A loaded BPF object; closed (programs and maps released) on drop.
pub(crate) struct Object {
    obj: NonNull<xdp_sys::bpf_object>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object").finish_non_exhaustive()
    }
}

// SAFETY: the bpf_object is used only through `&mut self` or for reads of
// fds and pointers fixed at load time; libbpf objects are not tied to a thread.
unsafe impl Send for Object {}

impl Object {
    /// Opens and loads `image` (`what` names it in errors).
    pub(crate) fn load(image: &'static Aligned<[u8]>, what: &str) -> Result<Self> {
        // SAFETY: the image is a static ELF valid for the whole program; libbpf
        // copies what it keeps. NULL opts means defaults.
        let obj = unsafe {
            xdp_sys::bpf_object__open_mem(
                image.0.as_ptr().cast::<c_void>(),
                image.0.len(),
                std::ptr::null(),
            )
        };
        let Some(obj) = NonNull::new(obj) else {
            return Err(Error::last_os(format!("libbpf: open {what}")));
        };
        // Closed by Drop from here on, also when loading fails.
        let this = Self { obj };
        // SAFETY: obj is a valid, opened object.
        let rc = unsafe { xdp_sys::bpf_object__load(this.obj.as_ptr()) };
        if rc < 0 {
            return Err(bpf_error(
                &format!("libbpf: load {what} into the kernel"),
                rc,
            ));
        }
        Ok(this)
    }

    /// The fd of program `name`.
    pub(crate) fn program_fd(&self, name: &CStr) -> Result<RawFd> {
        // SAFETY: obj is loaded; name is NUL-terminated.
        let prog =
            unsafe { xdp_sys::bpf_object__find_program_by_name(self.obj.as_ptr(), name.as_ptr()) };
        if prog.is_null() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("the BPF object has no program {name:?} (build error)"),
            ));
        }
        // SAFETY: prog belongs to the loaded object.
        let fd = unsafe { xdp_sys::bpf_program__fd(prog) };
        if fd < 0 {
            return Err(bpf_error(&format!("libbpf: fd of program {name:?}"), fd));
        }
        Ok(fd)
    }

    /// The fd of map `name`.
    pub(crate) fn map_fd(&self, name: &CStr) -> Result<RawFd> {
        // SAFETY: obj is loaded; name is NUL-terminated.
        let fd =
            unsafe { xdp_sys::bpf_object__find_map_fd_by_name(self.obj.as_ptr(), name.as_ptr()) };
        if fd < 0 {
            return Err(bpf_error(&format!("libbpf: find map {name:?}"), fd));
        }
        Ok(fd)
    }

    /// Maps the object's `.bss` section, the kernel map the program's global
    /// variables live in, into this process. Fails unless it is exactly `len`
    /// bytes, so the Rust mirror of its layout cannot silently disagree with
    /// the C source.
    ///
    /// Mapped here rather than through libbpf: libbpf 1.1 points its own copy
    /// at the kernel map only for skeletons.
    pub(crate) fn map_bss(&self, len: usize) -> Result<Mapped> {
        let mut map = std::ptr::null_mut();
        loop {
            // SAFETY: obj is loaded; `map` is null or a map of this object.
            map = unsafe { xdp_sys::bpf_object__next_map(self.obj.as_ptr(), map) };
            if map.is_null() {
                return Err(Error::new(
                    ErrorKind::Io,
                    "the BPF object has no .bss section (build error)",
                ));
            }
            // SAFETY: map belongs to the object; its name lives as long as it.
            let name = unsafe { CStr::from_ptr(xdp_sys::bpf_map__name(map)) };
            if name.to_bytes().ends_with(b".bss") {
                break;
            }
        }
        // SAFETY: map belongs to the loaded object.
        let (size, fd) = unsafe { (xdp_sys::bpf_map__value_size(map), xdp_sys::bpf_map__fd(map)) };
        if size as usize != len {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "the BPF program's .bss is {size} bytes, its Rust mirror {len} (build error)"
                ),
            ));
        }
        if fd < 0 {
            return Err(bpf_error("libbpf: fd of the .bss map", fd));
        }
        Mapped::shared(fd, len)
    }
}

/// A shared mapping of a BPF array map's memory (the program's variables);
/// unmapped on drop.
pub(crate) struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain shared memory; who may touch it when is up to the owner.
unsafe impl Send for Mapped {}

impl Mapped {
    fn shared(fd: RawFd, len: usize) -> Result<Self> {
        // SAFETY: a fresh shared mapping of `len` bytes of an mmap-able BPF
        // array (libbpf creates .bss with BPF_F_MMAPABLE); nothing else is
        // placed at the address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last_os("mmap the BPF program's .bss map")
                .with_fix("mmap-able BPF arrays need Linux 5.5 or later"));
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| Error::new(ErrorKind::Io, "mmap of the .bss map returned address 0"))?;
        Ok(Self { ptr, len })
    }

    /// The start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `shared`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: obj was opened in `load` and is closed only here.
        unsafe { xdp_sys::bpf_object__close(self.obj.as_ptr()) };
    }
}

/// Attaches XDP program `prog_fd` to `ifindex` through a BPF link, in the
/// driver's native mode when it has one: the program is detached when the
/// returned fd is closed, also when the process dies.
pub(crate) fn attach_xdp(prog_fd: RawFd, ifindex: u32, ifname: &str) -> Result<OwnedFd> {
    // SAFETY: prog_fd is a loaded XDP program; NULL options mean flags 0.
    let fd = unsafe {
        xdp_sys::bpf_link_create(
            prog_fd,
            ifindex as i32,
            xdp_sys::bpf_attach_type_BPF_XDP,
            std::ptr::null(),
        )
    };
    if fd < 0 {
        if -fd == libc::EBUSY || -fd == libc::EEXIST {
            return Err(Error::new(
                ErrorKind::AddrInUse,
                format!("another XDP program is already attached to {ifname}"),
            )
            .with_fix(format!(
                "see `ip link show {ifname}`; detach a stale one with `ip link set dev {ifname} xdp off`"
            )));
        }
        return Err(bpf_error(&format!("attach an XDP program to {ifname}"), fd));
    }
    // SAFETY: a new fd returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sum over CPUs of entry `key` of a per-CPU array of u64 (a stats path:
/// allocates one buffer per call).
pub(crate) fn percpu_sum(map_fd: RawFd, key: u32) -> Result<u64> {
    // SAFETY: no arguments; libbpf reads /sys/devices/system/cpu/possible once.
    let n = unsafe { xdp_sys::libbpf_num_possible_cpus() };
    let n = usize::try_from(n).map_err(|_| bpf_error("libbpf: count the possible CPUs", n))?;
    let mut values = vec![0u64; n.max(1)];
    // SAFETY: `values` holds one u64 per possible CPU, as the kernel writes
    // for a per-CPU array of u64; the key is a u32.
    let rc = unsafe {
        xdp_sys::bpf_map_lookup_elem(
            map_fd,
            (&key as *const u32).cast(),
            values.as_mut_ptr().cast(),
        )
    };
    if rc < 0 {
        return Err(bpf_error("read a per-CPU counter", rc));
    }
    Ok(values.iter().sum())
}
