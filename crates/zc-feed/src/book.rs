//! A full-depth order book per instrument, rebuilt from ITCH order messages.
//!
//! - **Orders** live in one preallocated open-addressing table keyed by order
//!   reference (linear probing, backward-shift deletion, no tombstones),
//!   sized for `max_orders` live orders at a load factor of at most ½. It
//!   never grows: an add that finds it full is counted and the book stops
//!   being trusted.
//! - **Price levels** are per instrument and side, a vector sorted so that
//!   the best price is last: most updates land near the top, where insertion
//!   and removal move few entries. A vector grows to the deepest book seen and
//!   keeps its capacity, so once warm nothing is allocated per message.
//! - **Instruments** are indexed by stock locate, the day's dense u16 code
//!   the Stock Directory message assigns with a symbol.
//!
//! Bad input never panics: a reference to an order the book does not hold
//! (a late join, a lost packet) is counted against its instrument, whose book
//! is then not trusted; an execution or cancel larger than the order is
//! counted and the order removed. [`OrderBook::trusted`] says whether the book
//! can be relied on: it saw the session from its first message and nothing
//! was lost or contradicted since.

use crate::itch::{self, Message};
use std::collections::HashMap;

/// Book settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    /// Live orders the table holds (all instruments together).
    pub max_orders: usize,
    /// Locate codes `0 .. max_instruments` are accepted.
    pub max_instruments: usize,
    /// Price levels reserved per side when an instrument is first named or
    /// used; a deeper book grows its vector (and keeps the capacity).
    pub levels_per_side: usize,
}

impl Default for BookConfig {
    fn default() -> Self {
        Self {
            max_orders: 1 << 20,
            max_instruments: 1 << 14,
            levels_per_side: 64,
        }
    }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bids.
    Buy,
    /// Offers.
    Sell,
}

impl Side {
    /// From the ITCH side byte (`B` or `S`).
    pub fn from_byte(b: u8) -> Option<Side> {
        match b {
            b'B' => Some(Side::Buy),
            b'S' => Some(Side::Sell),
            _ => None,
        }
    }
}

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Level {
    /// Price (4 implied decimals).
    pub price: u32,
    /// Shares resting at this price.
    pub shares: u64,
    /// Orders resting at this price.
    pub orders: u32,
}

/// Best bid and offer of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bbo {
    /// Best bid.
    pub bid: Option<Level>,
    /// Best offer.
    pub ask: Option<Level>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Order {
    order_ref: u64,
    price: u32,
    shares: u32,
    locate: u16,
    buy: bool,
    used: bool,
}

/// Bytes of one slot of the order table (the table has two slots per order).
pub const ORDER_SLOT_BYTES: usize = std::mem::size_of::<Order>();

#[derive(Debug, Clone)]
struct OrderTable {
    slots: Vec<Order>,
    mask: usize,
    len: usize,
    max: usize,
}

impl OrderTable {
    fn new(max: usize) -> Self {
        let n = (max.max(1) * 2).next_power_of_two();
        Self {
            slots: vec![Order::default(); n],
            mask: n - 1,
            len: 0,
            max: max.max(1),
        }
    }

    /// The home slot: the reference's low bits (folded with its high half).
    /// Exchanges number orders consecutively, so live orders occupy
    /// consecutive slots and a burst of activity on recent orders stays in a
    /// few cache lines; a scrambling hash would scatter them over the table.
    #[inline]
    fn home(&self, order_ref: u64) -> usize {
        (order_ref ^ (order_ref >> 32)) as usize & self.mask
    }

    #[inline]
    fn find(&self, order_ref: u64) -> Option<usize> {
        let mut i = self.home(order_ref);
        loop {
            let s = &self.slots[i];
            if !s.used {
                return None;
            }
            if s.order_ref == order_ref {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Inserts an order whose reference is not in the table.
    #[inline]
    fn insert(&mut self, o: Order) -> bool {
        if self.len == self.max {
            return false;
        }
        let mut i = self.home(o.order_ref);
        while self.slots[i].used {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Order { used: true, ..o };
        self.len += 1;
        true
    }

    /// Removes slot `i`, shifting later members of its probe run back.
    #[inline]
    fn remove(&mut self, mut i: usize) {
        self.len -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            if !self.slots[j].used {
                break;
            }
            let home = self.home(self.slots[j].order_ref);
            // Move j back to i when its home is not in the cyclic range (i, j].
            let between = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !between {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = Order::default();
    }
}

/// Price levels of one side, best last.
#[derive(Debug, Clone, Default)]
struct Ladder {
    levels: Vec<Level>,
}

impl Ladder {
    /// Index where `price` is or would go; bids ascend, offers descend.
    #[inline]
    fn position(&self, price: u32, buy: bool) -> Result<usize, usize> {
        if buy {
            self.levels.binary_search_by(|l| l.price.cmp(&price))
        } else {
            self.levels.binary_search_by(|l| price.cmp(&l.price))
        }
    }

    #[inline]
    fn add(&mut self, price: u32, shares: u32, buy: bool) {
        match self.position(price, buy) {
            Ok(i) => {
                let l = &mut self.levels[i];
                l.shares += u64::from(shares);
                l.orders += 1;
            }
            Err(i) => self.levels.insert(
                i,
                Level {
                    price,
                    shares: u64::from(shares),
                    orders: 1,
                },
            ),
        }
    }

    /// Takes `shares` off the level at `price`; `gone` when the order left it.
    #[inline]
    fn reduce(&mut self, price: u32, shares: u32, gone: bool, buy: bool) {
        if let Ok(i) = self.position(price, buy) {
            let l = &mut self.levels[i];
            l.shares = l.shares.saturating_sub(u64::from(shares));
            if gone {
                l.orders = l.orders.saturating_sub(1);
            }
            if l.orders == 0 {
                self.levels.remove(i);
            }
        }
    }

    fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }
}

/// Everything known about one instrument.
#[derive(Debug, Clone, Default)]
pub struct Instrument {
    symbol: [u8; 8],
    named: bool,
    bids: Ladder,
    asks: Ladder,
    /// Trading state from the last Stock Trading Action (`T`, `H`, `P`, `Q`), 0 before any.
    pub trading_state: u8,
    /// Trades seen (executions, printable executions with price, trade and cross messages).
    pub trades: u64,
    /// Shares traded.
    pub volume: u64,
    /// Price of the last trade.
    pub last_price: Option<u32>,
    /// Messages naming an order this book does not hold.
    pub unknown_orders: u64,
    /// Order messages applied.
    pub updates: u64,
}

impl Instrument {
    fn reserve(&mut self, levels: usize) {
        if self.bids.levels.capacity() == 0 {
            self.bids.levels.reserve(levels);
            self.asks.levels.reserve(levels);
        }
    }

    /// The symbol, once the Stock Directory named this locate.
    pub fn symbol(&self) -> Option<&str> {
        self.named.then(|| itch::symbol_str(&self.symbol))
    }

    /// Best bid and offer.
    pub fn bbo(&self) -> Bbo {
        Bbo {
            bid: self.bids.best(),
            ask: self.asks.best(),
        }
    }

    /// Up to `n` levels of one side, best first.
    pub fn depth(&self, side: Side, n: usize) -> impl Iterator<Item = Level> + '_ {
        let l = match side {
            Side::Buy => &self.bids.levels,
            Side::Sell => &self.asks.levels,
        };
        l.iter().rev().take(n).copied()
    }

    /// Number of price levels on one side.
    pub fn level_count(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.levels.len(),
            Side::Sell => self.asks.levels.len(),
        }
    }
}

/// What the book counted, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookStats {
    /// Messages applied (every type).
    pub messages: u64,
    /// Orders added (`A`, `F`, and the new half of `U`).
    pub adds: u64,
    /// Executions (`E`, `C`).
    pub executions: u64,
    /// Partial cancels (`X`).
    pub cancels: u64,
    /// Deletes (`D`).
    pub deletes: u64,
    /// Replaces (`U`).
    pub replaces: u64,
    /// Trade and cross messages (`P`, `Q`).
    pub trade_messages: u64,
    /// Broken trades (`B`).
    pub broken_trades: u64,
    /// Stock Directory entries.
    pub directory: u64,
    /// References to orders the book does not hold.
    pub unknown_order: u64,
    /// Adds whose reference is already live (the add is ignored).
    pub duplicate_order: u64,
    /// Executions or cancels of more shares than the order has (the order is removed).
    pub overfill: u64,
    /// Adds refused because the order table is full.
    pub order_table_full: u64,
    /// Messages whose locate is beyond `max_instruments` (ignored).
    pub locate_out_of_range: u64,
    /// Order messages for a locate the Stock Directory never named (applied).
    pub unnamed_instrument: u64,
    /// Adds with a side other than `B` or `S` (ignored).
    pub bad_side: u64,
}

/// The books of every instrument of one ITCH session.
#[derive(Debug, Clone)]
pub struct OrderBook {
    orders: OrderTable,
    instruments: Vec<Instrument>,
    by_symbol: HashMap<[u8; 8], u16>,
    stats: BookStats,
    lost: u64,
    complete: bool,
    levels_per_side: usize,
}

impl OrderBook {
    /// A book with its order table and instrument slots allocated.
    pub fn new(cfg: BookConfig) -> Self {
        let n = cfg.max_instruments.clamp(1, 1 << 16);
        Self {
            orders: OrderTable::new(cfg.max_orders),
            instruments: vec![Instrument::default(); n],
            by_symbol: HashMap::with_capacity(n),
            stats: BookStats::default(),
            lost: 0,
            complete: true,
            levels_per_side: cfg.levels_per_side,
        }
    }

    /// Bytes allocated for the order table and the instrument slots (levels
    /// grow on top of this with the depth of each book).
    pub fn allocated_bytes(&self) -> usize {
        self.orders.slots.len() * ORDER_SLOT_BYTES
            + self.instruments.len() * std::mem::size_of::<Instrument>()
    }

    /// The counters.
    pub fn stats(&self) -> BookStats {
        self.stats
    }

    /// Live orders.
    pub fn order_count(&self) -> usize {
        self.orders.len
    }

    /// Says that `n` messages of the session will never be seen (given up
    /// by recovery): the book is no longer trusted.
    pub fn mark_lost(&mut self, n: u64) {
        self.lost += n;
    }

    /// Says that the session was joined after its start: orders added before
    /// are unknown, so the book is not trusted.
    pub fn mark_late_join(&mut self) {
        self.complete = false;
    }

    /// Messages reported lost.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// True when the book saw the whole session so far and nothing contradicted it.
    pub fn trusted(&self) -> bool {
        let s = &self.stats;
        self.complete
            && self.lost == 0
            && s.unknown_order == 0
            && s.order_table_full == 0
            && s.overfill == 0
            && s.duplicate_order == 0
    }

    /// True when the book as a whole is trusted and this instrument had no
    /// reference to an unknown order.
    pub fn instrument_trusted(&self, locate: u16) -> bool {
        self.trusted()
            && self
                .instruments
                .get(usize::from(locate))
                .is_some_and(|i| i.unknown_orders == 0)
    }

    /// The instrument at `locate`.
    pub fn instrument(&self, locate: u16) -> Option<&Instrument> {
        self.instruments.get(usize::from(locate))
    }

    /// The locate the Stock Directory gave `symbol`.
    pub fn locate_of(&self, symbol: &str) -> Option<u16> {
        self.by_symbol.get(&itch::symbol_field(symbol)?).copied()
    }

    /// Instruments that were named or have had orders, with their locate.
    pub fn instruments(&self) -> impl Iterator<Item = (u16, &Instrument)> {
        self.instruments
            .iter()
            .enumerate()
            .filter(|(_, i)| i.named || i.updates > 0)
            .map(|(l, i)| (l as u16, i))
    }

    /// Named instruments.
    pub fn named_instruments(&self) -> usize {
        self.by_symbol.len()
    }

    /// Best bid and offer of `locate`.
    pub fn bbo(&self, locate: u16) -> Bbo {
        self.instrument(locate).map(|i| i.bbo()).unwrap_or_default()
    }

    /// Applies one message.
    #[inline]
    pub fn apply(&mut self, msg: &Message<'_>) {
        self.stats.messages += 1;
        let locate = msg.header().stock_locate;
        match msg {
            Message::AddOrder(m) => {
                self.add(locate, m.order_ref(), m.side(), m.shares(), m.price())
            }
            Message::AddOrderMpid(m) => {
                self.add(locate, m.order_ref(), m.side(), m.shares(), m.price())
            }
            Message::OrderExecuted(m) => {
                self.stats.executions += 1;
                self.execute(locate, m.order_ref(), m.executed_shares(), None);
            }
            Message::OrderExecutedWithPrice(m) => {
                self.stats.executions += 1;
                let print = (m.printable() == b'Y').then(|| m.execution_price());
                self.execute(locate, m.order_ref(), m.executed_shares(), Some(print));
            }
            Message::OrderCancel(m) => {
                self.stats.cancels += 1;
                if let Some(i) = self.order_of(locate, m.order_ref()) {
                    self.take(i, m.cancelled_shares());
                }
            }
            Message::OrderDelete(m) => {
                self.stats.deletes += 1;
                if let Some(i) = self.order_of(locate, m.order_ref()) {
                    let shares = self.orders.slots[i].shares;
                    self.take(i, shares);
                }
            }
            Message::OrderReplace(m) => {
                self.stats.replaces += 1;
                if let Some(i) = self.order_of(locate, m.original_order_ref()) {
                    let old = self.orders.slots[i];
                    self.take(i, old.shares);
                    let side = if old.buy { b'B' } else { b'S' };
                    self.add(old.locate, m.new_order_ref(), side, m.shares(), m.price());
                }
            }
            Message::Trade(m) => {
                self.stats.trade_messages += 1;
                if let Some(inst) = self.instrument_mut(locate) {
                    inst.trades += 1;
                    inst.volume += u64::from(m.shares());
                    inst.last_price = Some(m.price());
                }
            }
            Message::CrossTrade(m) => {
                self.stats.trade_messages += 1;
                if let Some(inst) = self.instrument_mut(locate) {
                    if m.shares() > 0 {
                        inst.trades += 1;
                        inst.volume += m.shares();
                        inst.last_price = Some(m.cross_price());
                    }
                }
            }
            Message::BrokenTrade(_) => self.stats.broken_trades += 1,
            Message::StockDirectory(m) => {
                self.stats.directory += 1;
                let stock = m.stock();
                let reserve = self.levels_per_side;
                if let Some(inst) = self.instrument_mut(locate) {
                    inst.reserve(reserve);
                    inst.symbol = stock;
                    inst.named = true;
                    self.by_symbol.insert(stock, locate);
                }
            }
            Message::StockTradingAction(m) => {
                if let Some(inst) = self.instrument_mut(locate) {
                    inst.trading_state = m.trading_state();
                }
            }
            _ => {}
        }
    }

    fn instrument_mut(&mut self, locate: u16) -> Option<&mut Instrument> {
        let inst = self.instruments.get_mut(usize::from(locate));
        if inst.is_none() {
            self.stats.locate_out_of_range += 1;
        }
        inst
    }

    /// The instrument for an order message, counting unnamed ones.
    #[inline]
    fn order_instrument(&mut self, locate: u16) -> Option<&mut Instrument> {
        let Some(inst) = self.instruments.get_mut(usize::from(locate)) else {
            self.stats.locate_out_of_range += 1;
            return None;
        };
        if !inst.named {
            self.stats.unnamed_instrument += 1;
            inst.reserve(self.levels_per_side);
        }
        inst.updates += 1;
        Some(inst)
    }

    /// The slot of a live order, counting an unknown reference against `locate`.
    #[inline]
    fn order_of(&mut self, locate: u16, order_ref: u64) -> Option<usize> {
        self.order_instrument(locate)?;
        match self.orders.find(order_ref) {
            Some(i) => Some(i),
            None => {
                self.stats.unknown_order += 1;
                if let Some(inst) = self.instruments.get_mut(usize::from(locate)) {
                    inst.unknown_orders += 1;
                }
                None
            }
        }
    }

    #[inline]
    fn add(&mut self, locate: u16, order_ref: u64, side: u8, shares: u32, price: u32) {
        self.stats.adds += 1;
        let Some(buy) = Side::from_byte(side).map(|s| s == Side::Buy) else {
            self.stats.bad_side += 1;
            return;
        };
        if self.order_instrument(locate).is_none() {
            return;
        }
        if self.orders.find(order_ref).is_some() {
            self.stats.duplicate_order += 1;
            return;
        }
        let o = Order {
            order_ref,
            price,
            shares,
            locate,
            buy,
            used: true,
        };
        if !self.orders.insert(o) {
            self.stats.order_table_full += 1;
            return;
        }
        let inst = &mut self.instruments[usize::from(locate)];
        if buy {
            inst.bids.add(price, shares, true);
        } else {
            inst.asks.add(price, shares, false);
        }
    }

    /// An execution: `print` is `None` for `E` (trade at the order's price),
    /// `Some(None)` for a non-printable `C`, `Some(Some(p))` for a printable one.
    #[inline]
    fn execute(&mut self, locate: u16, order_ref: u64, shares: u32, print: Option<Option<u32>>) {
        let Some(i) = self.order_of(locate, order_ref) else {
            return;
        };
        let o = self.orders.slots[i];
        let traded = shares.min(o.shares);
        self.take(i, shares);
        let price = match print {
            None => Some(o.price),
            Some(p) => p,
        };
        if let Some(p) = price {
            let inst = &mut self.instruments[usize::from(o.locate)];
            inst.trades += 1;
            inst.volume += u64::from(traded);
            inst.last_price = Some(p);
        }
    }

    /// Takes `shares` off order slot `i`; removes it when none are left.
    #[inline]
    fn take(&mut self, i: usize, shares: u32) {
        let o = self.orders.slots[i];
        if shares > o.shares {
            self.stats.overfill += 1;
        }
        let taken = shares.min(o.shares);
        let left = o.shares - taken;
        let gone = left == 0;
        let inst = &mut self.instruments[usize::from(o.locate)];
        if o.buy {
            inst.bids.reduce(o.price, taken, gone, true);
        } else {
            inst.asks.reduce(o.price, taken, gone, false);
        }
        if gone {
            self.orders.remove(i);
        } else {
            self.orders.slots[i].shares = left;
        }
    }

    /// Every live order as (reference, locate, side, price, shares), in no
    /// particular order (for comparing books).
    pub fn orders(&self) -> impl Iterator<Item = (u64, u16, Side, u32, u32)> + '_ {
        self.orders.slots.iter().filter(|o| o.used).map(|o| {
            let side = if o.buy { Side::Buy } else { Side::Sell };
            (o.order_ref, o.locate, side, o.price, o.shares)
        })
    }

    /// A 64-bit digest of every level and trade counter of every instrument:
    /// two books with the same digest hold, with overwhelming likelihood, the
    /// same depth and trades.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::default();
        for (locate, inst) in self.instruments() {
            h.u64(u64::from(locate));
            h.bytes(&inst.symbol);
            for side in [Side::Buy, Side::Sell] {
                for l in inst.depth(side, usize::MAX) {
                    h.u64(u64::from(l.price));
                    h.u64(l.shares);
                    h.u64(u64::from(l.orders));
                }
                h.u64(u64::MAX);
            }
            h.u64(inst.trades);
            h.u64(inst.volume);
            h.u64(inst.last_price.map_or(u64::MAX, u64::from));
        }
        h.0
    }
}

/// FNV-1a, for [`OrderBook::digest`].
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{AddOrderFields, Header, OrderDeleteFields, OrderExecutedFields};

    fn add(book: &mut OrderBook, r: u64, side: u8, shares: u32, price: u32) {
        let mut b = [0u8; 36];
        AddOrderFields {
            header: Header {
                stock_locate: 1,
                ..Default::default()
            },
            order_ref: r,
            side,
            shares,
            stock: *b"TEST    ",
            price,
        }
        .encode(&mut b)
        .unwrap();
        book.apply(&itch::decode(&b).unwrap());
    }

    #[test]
    fn levels_aggregate_and_the_best_is_on_top() {
        let mut book = OrderBook::new(BookConfig {
            max_orders: 16,
            max_instruments: 4,
            ..Default::default()
        });
        add(&mut book, 1, b'B', 100, 10_0000);
        add(&mut book, 2, b'B', 50, 10_0100);
        add(&mut book, 3, b'B', 25, 10_0000);
        add(&mut book, 4, b'S', 10, 10_0500);
        add(&mut book, 5, b'S', 20, 10_0300);
        let bbo = book.bbo(1);
        assert_eq!(bbo.bid.unwrap().price, 10_0100);
        assert_eq!(bbo.ask.unwrap().price, 10_0300);
        let bids: Vec<_> = book.instrument(1).unwrap().depth(Side::Buy, 5).collect();
        assert_eq!(
            bids[1],
            Level {
                price: 10_0000,
                shares: 125,
                orders: 2
            }
        );
        let mut b = [0u8; 31];
        OrderExecutedFields {
            header: Header {
                stock_locate: 1,
                ..Default::default()
            },
            order_ref: 2,
            executed_shares: 50,
            match_number: 1,
        }
        .encode(&mut b)
        .unwrap();
        book.apply(&itch::decode(&b).unwrap());
        assert_eq!(book.bbo(1).bid.unwrap().price, 10_0000);
        assert_eq!(book.instrument(1).unwrap().volume, 50);
        assert!(book.trusted());
        // Unknown reference: counted, never a panic, and trust is gone.
        let mut b = [0u8; 19];
        OrderDeleteFields {
            header: Header {
                stock_locate: 1,
                ..Default::default()
            },
            order_ref: 99,
        }
        .encode(&mut b)
        .unwrap();
        book.apply(&itch::decode(&b).unwrap());
        assert_eq!(book.stats().unknown_order, 1);
        assert!(!book.instrument_trusted(1));
    }

    #[test]
    fn the_order_table_refuses_when_full_and_removes_cleanly() {
        let mut t = OrderTable::new(64);
        for r in 0..64u64 {
            assert!(t.insert(Order {
                order_ref: r * 1_000_003,
                ..Default::default()
            }));
        }
        assert!(!t.insert(Order {
            order_ref: 7,
            ..Default::default()
        }));
        for r in (0..64u64).step_by(2) {
            let i = t.find(r * 1_000_003).unwrap();
            t.remove(i);
        }
        for r in 0..64u64 {
            assert_eq!(t.find(r * 1_000_003).is_some(), r % 2 == 1, "ref {r}");
        }
    }
}
