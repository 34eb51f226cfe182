//! The order book against a simple reference model (ordered maps, no
//! cleverness), on random valid streams with partial executions, replaces,
//! cancels and deletes over a few instruments, plus references to unknown
//! orders: after every message both agree on every level of every side.

use proptest::prelude::*;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use zc_feed::book::{BookConfig, Level, OrderBook, Side};
use zc_feed::itch::{self, *};

#[derive(Default)]
struct Model {
    orders: HashMap<u64, (u16, bool, u32, u32)>,
    /// (locate, buy) -> price -> (shares, orders)
    levels: BTreeMap<(u16, bool), BTreeMap<u32, (u64, u32)>>,
    volume: HashMap<u16, u64>,
}

impl Model {
    fn level_add(&mut self, locate: u16, buy: bool, price: u32, shares: u32) {
        let l = self
            .levels
            .entry((locate, buy))
            .or_default()
            .entry(price)
            .or_default();
        l.0 += u64::from(shares);
        l.1 += 1;
    }

    fn take(&mut self, r: u64, shares: u32) -> u32 {
        let Some(&(locate, buy, price, left)) = self.orders.get(&r) else {
            return 0;
        };
        let taken = shares.min(left);
        let side = self.levels.get_mut(&(locate, buy)).unwrap();
        let l = side.get_mut(&price).unwrap();
        l.0 -= u64::from(taken);
        if taken == left {
            l.1 -= 1;
            self.orders.remove(&r);
        } else {
            self.orders.get_mut(&r).unwrap().3 -= taken;
        }
        if l.1 == 0 {
            side.remove(&price);
        }
        taken
    }

    fn apply(&mut self, f: &Fields) {
        let locate = f.header().stock_locate;
        match f {
            Fields::AddOrder(a) => {
                let buy = a.side == b'B';
                if let Entry::Vacant(v) = self.orders.entry(a.order_ref) {
                    v.insert((locate, buy, a.price, a.shares));
                    self.level_add(locate, buy, a.price, a.shares);
                }
            }
            Fields::OrderExecuted(e) => {
                let loc = self.orders.get(&e.order_ref).map(|o| o.0);
                let t = self.take(e.order_ref, e.executed_shares);
                if let Some(l) = loc {
                    *self.volume.entry(l).or_default() += u64::from(t);
                }
            }
            Fields::OrderCancel(x) => {
                self.take(x.order_ref, x.cancelled_shares);
            }
            Fields::OrderDelete(d) => {
                self.take(d.order_ref, u32::MAX);
            }
            Fields::OrderReplace(u) => {
                if let Some(&(loc, buy, _, _)) = self.orders.get(&u.original_order_ref) {
                    self.take(u.original_order_ref, u32::MAX);
                    if let Entry::Vacant(v) = self.orders.entry(u.new_order_ref) {
                        v.insert((loc, buy, u.price, u.shares));
                        self.level_add(loc, buy, u.price, u.shares);
                    }
                }
            }
            _ => {}
        }
    }

    /// Levels best first, as the book reports them.
    fn depth(&self, locate: u16, buy: bool) -> Vec<Level> {
        let Some(side) = self.levels.get(&(locate, buy)) else {
            return Vec::new();
        };
        let it: Box<dyn Iterator<Item = (&u32, &(u64, u32))>> = if buy {
            Box::new(side.iter().rev())
        } else {
            Box::new(side.iter())
        };
        it.map(|(&price, &(shares, orders))| Level {
            price,
            shares,
            orders,
        })
        .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        locate: u16,
        buy: bool,
        tick: u32,
        shares: u32,
    },
    Execute {
        pick: usize,
        shares: u32,
    },
    Cancel {
        pick: usize,
        shares: u32,
    },
    Delete {
        pick: usize,
    },
    Replace {
        pick: usize,
        tick: u32,
        shares: u32,
    },
    Unknown {
        order_ref: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u16..4, any::<bool>(), 0u32..12, 1u32..500)
            .prop_map(|(locate, buy, tick, shares)| Op::Add { locate, buy, tick, shares }),
        2 => (any::<usize>(), 1u32..600).prop_map(|(pick, shares)| Op::Execute { pick, shares }),
        1 => (any::<usize>(), 1u32..600).prop_map(|(pick, shares)| Op::Cancel { pick, shares }),
        2 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        2 => (any::<usize>(), 0u32..12, 1u32..500)
            .prop_map(|(pick, tick, shares)| Op::Replace { pick, tick, shares }),
        1 => (1_000_000u64..1_000_100).prop_map(|order_ref| Op::Unknown { order_ref }),
    ]
}

fn header(locate: u16) -> Header {
    Header {
        stock_locate: locate,
        tracking_number: 0,
        timestamp: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_book_agrees_with_the_model_after_every_message(ops in prop::collection::vec(op(), 1..400)) {
        let mut book = OrderBook::new(BookConfig { max_orders: 1024, max_instruments: 8 , ..Default::default()});
        let mut model = Model::default();
        let mut live: Vec<u64> = Vec::new();
        let mut next_ref = 1u64;
        let mut unknown = 0u64;
        let mut buf = [0u8; 64];
        for op in ops {
            let f = match op {
                Op::Add { locate, buy, tick, shares } => {
                    live.push(next_ref);
                    next_ref += 1;
                    Fields::AddOrder(AddOrderFields {
                        header: header(locate),
                        order_ref: next_ref - 1,
                        side: if buy { b'B' } else { b'S' },
                        shares,
                        stock: *b"X       ",
                        price: 10_000 + tick * 100,
                    })
                }
                Op::Unknown { order_ref } => {
                    unknown += 1;
                    Fields::OrderDelete(OrderDeleteFields { header: header(1), order_ref })
                }
                _ if live.is_empty() => continue,
                Op::Execute { pick, shares } => {
                    let r = live[pick % live.len()];
                    let loc = model.orders[&r].0;
                    let left = model.orders[&r].3;
                    // Valid streams never execute more than is left.
                    let shares = shares.min(left);
                    if shares == left { live.retain(|&x| x != r); }
                    Fields::OrderExecuted(OrderExecutedFields {
                        header: header(loc), order_ref: r, executed_shares: shares, match_number: 1,
                    })
                }
                Op::Cancel { pick, shares } => {
                    let r = live[pick % live.len()];
                    let (loc, left) = (model.orders[&r].0, model.orders[&r].3);
                    let shares = shares.min(left);
                    if shares == left { live.retain(|&x| x != r); }
                    Fields::OrderCancel(OrderCancelFields { header: header(loc), order_ref: r, cancelled_shares: shares })
                }
                Op::Delete { pick } => {
                    let r = live.swap_remove(pick % live.len());
                    Fields::OrderDelete(OrderDeleteFields { header: header(model.orders[&r].0), order_ref: r })
                }
                Op::Replace { pick, tick, shares } => {
                    let i = pick % live.len();
                    let r = live[i];
                    live[i] = next_ref;
                    next_ref += 1;
                    Fields::OrderReplace(OrderReplaceFields {
                        header: header(model.orders[&r].0),
                        original_order_ref: r,
                        new_order_ref: next_ref - 1,
                        shares,
                        price: 10_000 + tick * 100,
                    })
                }
            };
            let n = f.encode(&mut buf).unwrap();
            book.apply(&itch::decode(&buf[..n]).unwrap());
            model.apply(&f);
            for locate in 1..4u16 {
                for (side, buy) in [(Side::Buy, true), (Side::Sell, false)] {
                    let got: Vec<Level> = book.instrument(locate).unwrap().depth(side, usize::MAX).collect();
                    prop_assert_eq!(got, model.depth(locate, buy), "locate {} {:?}", locate, side);
                }
                let vol = book.instrument(locate).unwrap().volume;
                prop_assert_eq!(vol, model.volume.get(&locate).copied().unwrap_or(0));
            }
            prop_assert_eq!(book.order_count(), model.orders.len());
        }
        prop_assert_eq!(book.stats().unknown_order, unknown);
        prop_assert_eq!(book.trusted(), unknown == 0);
    }
}

#[test]
fn unknown_instruments_and_full_tables_are_counted_never_a_panic() {
    let mut book = OrderBook::new(BookConfig {
        max_orders: 2,
        max_instruments: 4,
        ..Default::default()
    });
    let mut buf = [0u8; 64];
    let mut add = |book: &mut OrderBook, locate: u16, r: u64| {
        let f = AddOrderFields {
            header: header(locate),
            order_ref: r,
            side: b'B',
            shares: 10,
            stock: *b"X       ",
            price: 100,
        };
        let n = f.encode(&mut buf).unwrap();
        book.apply(&itch::decode(&buf[..n]).unwrap());
    };
    add(&mut book, 9, 1); // locate beyond the table
    add(&mut book, 2, 2); // never named by a directory
    add(&mut book, 2, 3);
    add(&mut book, 2, 4); // table full
    add(&mut book, 2, 3); // duplicate reference
    let s = book.stats();
    assert_eq!(
        (
            s.locate_out_of_range,
            s.unnamed_instrument,
            s.order_table_full,
            s.duplicate_order
        ),
        (1, 4, 1, 1)
    );
    assert!(!book.trusted());
}
