//! A synthetic but realistic ITCH 5.0 session, and its MoldUDP64 packets.
//!
//! The session opens like a trading day: start of messages, a Stock Directory
//! entry per instrument with its trading state, Reg SHO and market-maker
//! messages, one of each remaining administrative type, start of system and
//! market hours. Then order flow around a price that moves: adds (with and
//! without attribution) a few ticks either side of each instrument's mid,
//! partial and full executions (some at another price), partial cancels,
//! deletes, replaces, non-displayed trades, the odd cross and broken trade.
//! [`SessionGen::close`] ends it with end of market hours, end of system hours
//! and end of messages.
//!
//! Everything follows from `GenConfig::seed`: two generators with the same settings
//! produce the same messages, so lines A and B (and a recovery server) can
//! each run their own and still carry the same packets. Timestamps are the
//! caller's: the message's intended send time.

use crate::itch::{self, *};
use crate::mold::{PacketWriter, Session};

/// Relative weights of the order-flow messages (any scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// `A`.
    pub add: u32,
    /// `F`.
    pub add_mpid: u32,
    /// `E`.
    pub execute: u32,
    /// `C`.
    pub execute_with_price: u32,
    /// `X`.
    pub cancel: u32,
    /// `D`.
    pub delete: u32,
    /// `U`.
    pub replace: u32,
    /// `P`.
    pub trade: u32,
    /// `Q`.
    pub cross: u32,
    /// `B`.
    pub broken: u32,
    /// Administrative types (`H`, `Y`, `L`, `V`, `W`, `K`, `J`, `h`, `I`, `N`, `O`) in turn.
    pub admin: u32,
}

impl Default for Mix {
    /// Roughly the shares of a NASDAQ day: adds and deletes dominate,
    /// executions are a few percent.
    fn default() -> Self {
        Self {
            add: 400,
            add_mpid: 30,
            execute: 50,
            execute_with_price: 5,
            cancel: 40,
            delete: 360,
            replace: 90,
            trade: 15,
            cross: 1,
            broken: 1,
            admin: 8,
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenConfig {
    /// Instruments (locates 1 ..= instruments).
    pub instruments: u16,
    /// Seed of every random choice.
    pub seed: u64,
    /// Order-flow mix.
    pub mix: Mix,
    /// Live orders kept at most (adds turn into deletes beyond it).
    pub max_live_orders: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            instruments: 100,
            seed: 1,
            mix: Mix::default(),
            max_live_orders: 50_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Live {
    order_ref: u64,
    locate: u16,
    buy: bool,
    price: u32,
    shares: u32,
}

/// Produces one session's messages.
#[derive(Debug, Clone)]
pub struct SessionGen {
    cfg: GenConfig,
    rng: fastrand::Rng,
    preamble: Vec<Fields>,
    next_preamble: usize,
    live: Vec<Live>,
    mids: Vec<u32>,
    next_ref: u64,
    next_match: u64,
    tracking: u16,
    admin_turn: usize,
    mix_total: u32,
}

const TICK: u32 = 100;

fn symbol(locate: u16) -> [u8; 8] {
    let mut s = [b' '; 8];
    let text = format!("S{locate:04}");
    s[..text.len()].copy_from_slice(text.as_bytes());
    s
}

/// The symbol the generator names `locate` (`S0001`, …).
pub fn symbol_of(locate: u16) -> String {
    itch::symbol_str(&symbol(locate)).to_owned()
}

impl SessionGen {
    /// A generator; the preamble is built here (its only allocation).
    pub fn new(cfg: GenConfig) -> Self {
        let n = cfg.instruments.max(1);
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let mids: Vec<u32> = (0..=n).map(|_| rng.u32(10..500) * 10_000).collect();
        let mut g = Self {
            cfg: GenConfig {
                instruments: n,
                ..cfg
            },
            rng,
            preamble: Vec::new(),
            next_preamble: 0,
            live: Vec::with_capacity(cfg.max_live_orders.max(1)),
            mids,
            next_ref: 1,
            next_match: 1,
            tracking: 0,
            admin_turn: 0,
            mix_total: 0,
        };
        let m = &cfg.mix;
        g.mix_total = m.add
            + m.add_mpid
            + m.execute
            + m.execute_with_price
            + m.cancel
            + m.delete
            + m.replace
            + m.trade
            + m.cross
            + m.broken
            + m.admin;
        g.preamble = g.build_preamble();
        g
    }

    fn header(&mut self, locate: u16) -> Header {
        self.tracking = self.tracking.wrapping_add(1);
        Header {
            stock_locate: locate,
            tracking_number: self.tracking,
            timestamp: 0,
        }
    }

    fn system(&mut self, code: u8) -> Fields {
        Fields::SystemEvent(SystemEventFields {
            header: self.header(0),
            event_code: code,
        })
    }

    fn build_preamble(&mut self) -> Vec<Fields> {
        let mut p = vec![self.system(b'O')];
        const CATEGORIES: &[u8] = b"QGSNAPZV";
        const CLASSES: &[u8] = b"ABCFILNOPQRSTUVW";
        const SUBTYPES: &[&[u8; 2]] = &[b"C ", b"Z ", b"I ", b"E ", b"RT", b"A "];
        for locate in 1..=self.cfg.instruments {
            let stock = symbol(locate);
            let r = StockDirectoryFields {
                header: self.header(locate),
                stock,
                market_category: CATEGORIES[usize::from(locate) % CATEGORIES.len()],
                financial_status: b'N',
                round_lot_size: 100,
                round_lots_only: b'N',
                issue_classification: CLASSES[usize::from(locate) % CLASSES.len()],
                issue_subtype: *SUBTYPES[usize::from(locate) % SUBTYPES.len()],
                authenticity: b'P',
                short_sale_threshold: b'N',
                ipo_flag: if locate % 7 == 0 { b'Y' } else { b'N' },
                luld_tier: if locate % 2 == 0 { b'1' } else { b'2' },
                etp_flag: b'N',
                etp_leverage_factor: 0,
                inverse_indicator: b'N',
            };
            p.push(Fields::StockDirectory(r));
            let h = StockTradingActionFields {
                header: self.header(locate),
                stock,
                trading_state: b'T',
                reserved: b' ',
                reason: *b"    ",
            };
            p.push(Fields::StockTradingAction(h));
        }
        // One of every administrative type, so every type is in every session.
        for _ in 0..11 {
            let f = self.admin();
            p.push(f);
        }
        p.push(self.system(b'S'));
        p.push(self.system(b'Q'));
        p
    }

    fn pick_locate(&mut self) -> u16 {
        self.rng.u16(1..=self.cfg.instruments)
    }

    /// The next administrative message, cycling through the types.
    fn admin(&mut self) -> Fields {
        let locate = self.pick_locate();
        let stock = symbol(locate);
        let mid = self.mids[usize::from(locate)];
        let turn = self.admin_turn;
        self.admin_turn += 1;
        let header = self.header(locate);
        match turn % 11 {
            0 => Fields::StockTradingAction(StockTradingActionFields {
                header,
                stock,
                trading_state: b"HPQT"[self.rng.usize(..4)],
                reserved: b' ',
                reason: *b"T1  ",
            }),
            1 => Fields::RegShoRestriction(RegShoRestrictionFields {
                header,
                stock,
                action: b"012"[self.rng.usize(..3)],
            }),
            2 => Fields::MarketParticipantPosition(MarketParticipantPositionFields {
                header,
                mpid: *b"ZCMM",
                stock,
                primary_market_maker: b"YN"[self.rng.usize(..2)],
                market_maker_mode: b"NPSRL"[self.rng.usize(..5)],
                participant_state: b"AEWSD"[self.rng.usize(..5)],
            }),
            3 => Fields::MwcbDeclineLevel(MwcbDeclineLevelFields {
                header: Header {
                    stock_locate: 0,
                    ..header
                },
                // Price(8): dollars times 10^8.
                level1: 3_000 * 100_000_000,
                level2: 2_800 * 100_000_000,
                level3: 2_600 * 100_000_000,
            }),
            4 => Fields::MwcbStatus(MwcbStatusFields {
                header: Header {
                    stock_locate: 0,
                    ..header
                },
                breached_level: b"123"[self.rng.usize(..3)],
            }),
            5 => Fields::IpoQuotingPeriod(IpoQuotingPeriodFields {
                header,
                stock,
                release_time: 34_200 + self.rng.u32(..3600),
                release_qualifier: b"AC"[self.rng.usize(..2)],
                ipo_price: mid,
            }),
            6 => Fields::LuldAuctionCollar(LuldAuctionCollarFields {
                header,
                stock,
                reference_price: mid,
                upper_price: mid + mid / 10,
                lower_price: mid - mid / 10,
                extension: self.rng.u32(..4),
            }),
            7 => Fields::OperationalHalt(OperationalHaltFields {
                header,
                stock,
                market_code: b"QBX"[self.rng.usize(..3)],
                action: b"HT"[self.rng.usize(..2)],
            }),
            8 => Fields::Noii(NoiiFields {
                header,
                paired_shares: self.rng.u64(..1_000_000),
                imbalance_shares: self.rng.u64(..100_000),
                imbalance_direction: b"BSNO"[self.rng.usize(..4)],
                stock,
                far_price: mid,
                near_price: mid + TICK,
                current_reference_price: mid,
                cross_type: b"OCHA"[self.rng.usize(..4)],
                price_variation: b"L123456789ABC "[self.rng.usize(..14)],
            }),
            9 => Fields::Rpii(RpiiFields {
                header,
                stock,
                interest_flag: b"BSAN"[self.rng.usize(..4)],
            }),
            _ => Fields::DirectListing(DirectListingFields {
                header,
                stock,
                open_eligibility: b"NY"[self.rng.usize(..2)],
                min_allowable_price: mid - mid / 5,
                max_allowable_price: mid + mid / 5,
                near_execution_price: mid,
                near_execution_time: 34_200_000_000_000,
                lower_price_collar: mid - mid / 10,
                upper_price_collar: mid + mid / 10,
            }),
        }
    }

    /// The next message of the session, stamped `timestamp` (ns since midnight).
    #[inline]
    pub fn next(&mut self, timestamp: u64) -> Fields {
        let mut f = if self.next_preamble < self.preamble.len() {
            self.next_preamble += 1;
            self.preamble[self.next_preamble - 1]
        } else {
            self.flow()
        };
        f.header_mut().timestamp = timestamp & itch::MAX_TIMESTAMP;
        f
    }

    /// The closing messages: end of market hours, end of system hours, end of messages.
    pub fn close(&mut self) -> [Fields; 3] {
        [self.system(b'M'), self.system(b'E'), self.system(b'C')]
    }

    fn flow(&mut self) -> Fields {
        let m = self.cfg.mix;
        let mut r = self.rng.u32(..self.mix_total.max(1));
        let mut take = |w: u32| {
            if r < w {
                true
            } else {
                r -= w;
                false
            }
        };
        let full = self.live.len() >= self.cfg.max_live_orders.max(1);
        let empty = self.live.is_empty();
        if take(m.add) {
            return if full { self.delete() } else { self.add(false) };
        }
        if take(m.add_mpid) {
            return if full { self.delete() } else { self.add(true) };
        }
        if empty {
            return self.add(false);
        }
        if take(m.execute) {
            return self.execute(false);
        }
        if take(m.execute_with_price) {
            return self.execute(true);
        }
        if take(m.cancel) {
            return self.cancel();
        }
        if take(m.delete) {
            return self.delete();
        }
        if take(m.replace) {
            return self.replace();
        }
        if take(m.trade) {
            return self.trade();
        }
        if take(m.cross) {
            return self.cross();
        }
        if take(m.broken) {
            let header = self.header(0);
            return Fields::BrokenTrade(BrokenTradeFields {
                header,
                match_number: self.next_match.saturating_sub(1).max(1),
            });
        }
        self.admin()
    }

    fn quote(&mut self, locate: u16, buy: bool) -> u32 {
        let l = usize::from(locate);
        // The mid drifts a tick now and then.
        match self.rng.u32(..64) {
            0 if self.mids[l] > 20 * TICK => self.mids[l] -= TICK,
            1 => self.mids[l] += TICK,
            _ => {}
        }
        let away = TICK * self.rng.u32(1..=20);
        if buy {
            self.mids[l].saturating_sub(away).max(TICK)
        } else {
            self.mids[l] + away
        }
    }

    fn add(&mut self, mpid: bool) -> Fields {
        let locate = self.pick_locate();
        let buy = self.rng.bool();
        let price = self.quote(locate, buy);
        let shares = 100 * self.rng.u32(1..=20);
        let order_ref = self.next_ref;
        self.next_ref += 1;
        self.live.push(Live {
            order_ref,
            locate,
            buy,
            price,
            shares,
        });
        let header = self.header(locate);
        let side = if buy { b'B' } else { b'S' };
        let stock = symbol(locate);
        if mpid {
            Fields::AddOrderMpid(AddOrderMpidFields {
                header,
                order_ref,
                side,
                shares,
                stock,
                price,
                attribution: *b"ZCMM",
            })
        } else {
            Fields::AddOrder(AddOrderFields {
                header,
                order_ref,
                side,
                shares,
                stock,
                price,
            })
        }
    }

    fn pick_live(&mut self) -> usize {
        self.rng.usize(..self.live.len())
    }

    fn execute(&mut self, with_price: bool) -> Fields {
        let i = self.pick_live();
        let o = self.live[i];
        let executed = if self.rng.bool() {
            o.shares
        } else {
            self.rng.u32(1..=o.shares)
        };
        if executed == o.shares {
            self.live.swap_remove(i);
        } else {
            self.live[i].shares -= executed;
        }
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(o.locate);
        if with_price {
            Fields::OrderExecutedWithPrice(OrderExecutedWithPriceFields {
                header,
                order_ref: o.order_ref,
                executed_shares: executed,
                match_number,
                printable: b"YN"[self.rng.usize(..2)],
                execution_price: o.price + TICK * self.rng.u32(0..3),
            })
        } else {
            Fields::OrderExecuted(OrderExecutedFields {
                header,
                order_ref: o.order_ref,
                executed_shares: executed,
                match_number,
            })
        }
    }

    fn cancel(&mut self) -> Fields {
        let i = self.pick_live();
        let o = self.live[i];
        if o.shares < 2 {
            return self.delete_at(i);
        }
        let cancelled = self.rng.u32(1..o.shares);
        self.live[i].shares -= cancelled;
        let header = self.header(o.locate);
        Fields::OrderCancel(OrderCancelFields {
            header,
            order_ref: o.order_ref,
            cancelled_shares: cancelled,
        })
    }

    fn delete(&mut self) -> Fields {
        let i = self.pick_live();
        self.delete_at(i)
    }

    fn delete_at(&mut self, i: usize) -> Fields {
        let o = self.live.swap_remove(i);
        let header = self.header(o.locate);
        Fields::OrderDelete(OrderDeleteFields {
            header,
            order_ref: o.order_ref,
        })
    }

    fn replace(&mut self) -> Fields {
        let i = self.pick_live();
        let o = self.live[i];
        let price = self.quote(o.locate, o.buy);
        let shares = 100 * self.rng.u32(1..=20);
        let new_ref = self.next_ref;
        self.next_ref += 1;
        self.live[i] = Live {
            order_ref: new_ref,
            price,
            shares,
            ..o
        };
        let header = self.header(o.locate);
        Fields::OrderReplace(OrderReplaceFields {
            header,
            original_order_ref: o.order_ref,
            new_order_ref: new_ref,
            shares,
            price,
        })
    }

    fn trade(&mut self) -> Fields {
        let locate = self.pick_locate();
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(locate);
        Fields::Trade(TradeFields {
            header,
            order_ref: 0,
            side: b'B',
            shares: 100 * self.rng.u32(1..=10),
            stock: symbol(locate),
            price: self.mids[usize::from(locate)],
            match_number,
        })
    }

    fn cross(&mut self) -> Fields {
        let locate = self.pick_locate();
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(locate);
        Fields::CrossTrade(CrossTradeFields {
            header,
            shares: 100 * self.rng.u64(0..=1000),
            stock: symbol(locate),
            cross_price: self.mids[usize::from(locate)],
            match_number,
            cross_type: b"OCHI"[self.rng.usize(..4)],
        })
    }
}

/// Packs a session's messages into MoldUDP64 packets: a packet is full when
/// the next message would pass `max_payload` bytes or it holds
/// `max_messages`. The boundaries depend only on the messages, so every
/// line cuts the same packets.
#[derive(Debug, Clone)]
pub struct Packer {
    session: Session,
    max_payload: usize,
    max_messages: u16,
    buf: Vec<u8>,
    len: usize,
    count: u16,
    first: u64,
    next_seq: u64,
}

impl Packer {
    /// Packets of at most `max_payload` bytes (≥ 72: a header and the longest
    /// message) and `max_messages` messages, starting at sequence number 1.
    pub fn new(session: Session, max_payload: usize, max_messages: u16) -> Self {
        let max_payload = max_payload.clamp(
            crate::mold::HEADER_LEN + 2 + itch::MAX_MESSAGE_LEN,
            usize::from(u16::MAX),
        );
        Self {
            session,
            max_payload,
            max_messages: max_messages.clamp(1, crate::mold::END_OF_SESSION - 1),
            buf: vec![0; max_payload],
            len: 0,
            count: 0,
            first: 1,
            next_seq: 1,
        }
    }

    /// Sequence number the next message gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Adds a message. When it does not fit, the packet so far is complete:
    /// `emit` gets it (first sequence number, bytes) before the message starts
    /// the next one.
    pub fn push(&mut self, msg: &[u8], emit: &mut dyn FnMut(u64, &[u8])) {
        if self.count > 0
            && (self.count >= self.max_messages || self.len + 2 + msg.len() > self.max_payload)
        {
            self.flush(emit);
        }
        if self.count == 0 {
            self.first = self.next_seq;
        }
        let mut w = self.writer();
        let pushed = w.push(msg);
        self.len = w.len();
        debug_assert!(pushed, "a message that fits an empty packet");
        self.count += 1;
        self.next_seq += 1;
    }

    fn writer(&mut self) -> PacketWriter<'_> {
        if self.count == 0 {
            PacketWriter::new(&mut self.buf, self.session, self.first)
                .unwrap_or_else(|| unreachable!("the buffer holds a header"))
        } else {
            PacketWriter::resume(&mut self.buf, self.len, self.count)
        }
    }

    /// Hands out the packet in progress, if any.
    pub fn flush(&mut self, emit: &mut dyn FnMut(u64, &[u8])) {
        if self.count > 0 {
            emit(self.first, &self.buf[..self.len]);
        }
        self.count = 0;
        self.len = 0;
    }

    /// Messages in the packet in progress.
    pub fn pending(&self) -> u16 {
        self.count
    }
}
