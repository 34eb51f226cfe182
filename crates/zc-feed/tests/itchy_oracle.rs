//! Every ITCH message type, decoded by our views and by an independent
//! decoder (the `itchy` crate) from the same generated NASDAQ-format stream:
//! every field must agree.
//!
//! itchy 0.3.4 knows 21 of the 23 types: Operational Halt (`h`) and Direct
//! Listing with Capital Raise (`O`) stop its parser. Those two are checked
//! against bytes laid out by hand from the specification's offset table.

use itchy::{Body, MessageStream};
use zc_feed::file::FileWriter;
use zc_feed::gen::{GenConfig, Mix, SessionGen};
use zc_feed::itch::{self, Fields, Message, MESSAGE_TYPES};

fn name<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}")
}

fn pick(b: u8, table: &[(u8, &str)]) -> String {
    table
        .iter()
        .find(|(c, _)| *c == b)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| panic!("byte {:?} has no itchy name", b as char))
}

fn stock(s: &[u8; 8]) -> String {
    String::from_utf8(s.to_vec()).unwrap()
}

fn yn(b: u8) -> bool {
    b == b'Y'
}

fn maybe_yn(b: u8) -> Option<bool> {
    match b {
        b'Y' => Some(true),
        b'N' => Some(false),
        _ => None,
    }
}

const SIDE: &[(u8, &str)] = &[(b'B', "Buy"), (b'S', "Sell")];
const CROSS: &[(u8, &str)] = &[
    (b'O', "Opening"),
    (b'C', "Closing"),
    (b'H', "IpoOrHalted"),
    (b'I', "Intraday"),
    (b'A', "ExtendedTradingClose"),
];

/// Compares one message field by field; panics with the difference.
fn check(ours: &Message<'_>, theirs: &itchy::Message) {
    let h = ours.header();
    assert_eq!(theirs.tag, ours.tag());
    assert_eq!(theirs.stock_locate, h.stock_locate);
    assert_eq!(theirs.tracking_number, h.tracking_number);
    assert_eq!(theirs.timestamp, h.timestamp);
    match (ours.fields(), &theirs.body) {
        (Fields::SystemEvent(f), Body::SystemEvent { event }) => assert_eq!(
            name(event),
            pick(
                f.event_code,
                &[
                    (b'O', "StartOfMessages"),
                    (b'S', "StartOfSystemHours"),
                    (b'Q', "StartOfMarketHours"),
                    (b'M', "EndOfMarketHours"),
                    (b'E', "EndOfSystemHours"),
                    (b'C', "EndOfMessages"),
                ]
            )
        ),
        (Fields::StockDirectory(f), Body::StockDirectory(t)) => {
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(
                name(t.market_category),
                pick(
                    f.market_category,
                    &[
                        (b'Q', "NasdaqGlobalSelect"),
                        (b'G', "NasdaqGlobalMarket"),
                        (b'S', "NasdaqCapitalMarket"),
                        (b'N', "Nyse"),
                        (b'A', "NyseMkt"),
                        (b'P', "NyseArca"),
                        (b'Z', "BatsZExchange"),
                        (b'V', "InvestorsExchange"),
                    ]
                )
            );
            assert_eq!(
                name(t.financial_status),
                pick(f.financial_status, &[(b'N', "Normal")])
            );
            assert_eq!(t.round_lot_size, f.round_lot_size);
            assert_eq!(t.round_lots_only, yn(f.round_lots_only));
            assert_eq!(
                name(t.issue_classification),
                pick(
                    f.issue_classification,
                    &[
                        (b'A', "AmericanDepositaryShare"),
                        (b'B', "Bond"),
                        (b'C', "CommonStock"),
                        (b'F', "DepositoryReceipt"),
                        (b'I', "A144"),
                        (b'L', "LimitedPartnership"),
                        (b'N', "Notes"),
                        (b'O', "OrdinaryShare"),
                        (b'P', "PreferredStock"),
                        (b'Q', "OtherSecurities"),
                        (b'R', "Right"),
                        (b'S', "SharesOfBeneficialInterest"),
                        (b'T', "ConvertibleDebenture"),
                        (b'U', "Unit"),
                        (b'V', "UnitsPerBenifInt"),
                        (b'W', "Warrant"),
                    ]
                )
            );
            let sub = match &f.issue_subtype {
                b"C " => "CommonShares",
                b"Z " => "NotApplicable",
                b"I " => "ETFIndexFundShares",
                b"E " => "ETFPortfolioDepositaryReceipt",
                b"RT" => "REIT",
                b"A " => "PreferredTrustSecurities",
                other => panic!("subtype {other:?}"),
            };
            assert_eq!(name(t.issue_subtype), sub);
            assert_eq!(t.authenticity, f.authenticity == b'P');
            assert_eq!(t.short_sale_threshold, maybe_yn(f.short_sale_threshold));
            assert_eq!(t.ipo_flag, maybe_yn(f.ipo_flag));
            assert_eq!(
                name(t.luld_ref_price_tier),
                pick(
                    f.luld_tier,
                    &[(b'1', "Tier1"), (b'2', "Tier2"), (b' ', "Na")]
                )
            );
            assert_eq!(t.etp_flag, maybe_yn(f.etp_flag));
            assert_eq!(t.etp_leverage_factor, f.etp_leverage_factor);
            assert_eq!(t.inverse_indicator, yn(f.inverse_indicator));
        }
        (
            Fields::StockTradingAction(f),
            Body::TradingAction {
                stock: s,
                trading_state,
                reason,
            },
        ) => {
            assert_eq!(s.as_str(), stock(&f.stock));
            assert_eq!(
                name(trading_state),
                pick(
                    f.trading_state,
                    &[
                        (b'H', "Halted"),
                        (b'P', "Paused"),
                        (b'Q', "QuotationOnly"),
                        (b'T', "Trading"),
                    ]
                )
            );
            assert_eq!(reason.as_bytes(), &f.reason);
        }
        (Fields::RegShoRestriction(f), Body::RegShoRestriction { stock: s, action }) => {
            assert_eq!(s.as_str(), stock(&f.stock));
            assert_eq!(
                name(action),
                pick(
                    f.action,
                    &[(b'0', "None"), (b'1', "Intraday"), (b'2', "Extant")]
                )
            );
        }
        (Fields::MarketParticipantPosition(f), Body::ParticipantPosition(t)) => {
            assert_eq!(t.mpid.as_bytes(), &f.mpid);
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(t.primary_market_maker, yn(f.primary_market_maker));
            assert_eq!(
                name(t.market_maker_mode),
                pick(
                    f.market_maker_mode,
                    &[
                        (b'N', "Normal"),
                        (b'P', "Passive"),
                        (b'S', "Syndicate"),
                        (b'R', "Presyndicate"),
                        (b'L', "Penalty"),
                    ]
                )
            );
            assert_eq!(
                name(t.market_participant_state),
                pick(
                    f.participant_state,
                    &[
                        (b'A', "Active"),
                        (b'E', "Excused"),
                        (b'W', "Withdrawn"),
                        (b'S', "Suspended"),
                        (b'D', "Deleted"),
                    ]
                )
            );
        }
        (
            Fields::MwcbDeclineLevel(f),
            Body::MwcbDeclineLevel {
                level1,
                level2,
                level3,
            },
        ) => {
            assert_eq!(
                (level1.raw(), level2.raw(), level3.raw()),
                (f.level1, f.level2, f.level3)
            );
        }
        (Fields::MwcbStatus(f), Body::Breach(l)) => assert_eq!(
            name(l),
            pick(
                f.breached_level,
                &[(b'1', "L1"), (b'2', "L2"), (b'3', "L3")]
            )
        ),
        (Fields::IpoQuotingPeriod(f), Body::IpoQuotingPeriod(t)) => {
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(t.release_time, f.release_time);
            assert_eq!(
                name(t.release_qualifier),
                pick(
                    f.release_qualifier,
                    &[(b'A', "Anticipated"), (b'C', "Cancelled")]
                )
            );
            assert_eq!(t.price.raw(), f.ipo_price);
        }
        (
            Fields::LuldAuctionCollar(f),
            Body::LULDAuctionCollar {
                stock: s,
                ref_price,
                upper_price,
                lower_price,
                extension,
            },
        ) => {
            assert_eq!(s.as_str(), stock(&f.stock));
            assert_eq!(
                (
                    ref_price.raw(),
                    upper_price.raw(),
                    lower_price.raw(),
                    *extension
                ),
                (f.reference_price, f.upper_price, f.lower_price, f.extension)
            );
        }
        (Fields::AddOrder(f), Body::AddOrder(t)) => {
            assert_eq!(t.reference, f.order_ref);
            assert_eq!(name(t.side), pick(f.side, SIDE));
            assert_eq!(t.shares, f.shares);
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(t.price.raw(), f.price);
            assert_eq!(t.mpid, None);
        }
        (Fields::AddOrderMpid(f), Body::AddOrder(t)) => {
            assert_eq!(t.reference, f.order_ref);
            assert_eq!(name(t.side), pick(f.side, SIDE));
            assert_eq!(t.shares, f.shares);
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(t.price.raw(), f.price);
            assert_eq!(t.mpid.unwrap().as_bytes(), &f.attribution);
        }
        (
            Fields::OrderExecuted(f),
            Body::OrderExecuted {
                reference,
                executed,
                match_number,
            },
        ) => assert_eq!(
            (*reference, *executed, *match_number),
            (f.order_ref, f.executed_shares, f.match_number)
        ),
        (
            Fields::OrderExecutedWithPrice(f),
            Body::OrderExecutedWithPrice {
                reference,
                executed,
                match_number,
                printable,
                price,
            },
        ) => assert_eq!(
            (
                *reference,
                *executed,
                *match_number,
                *printable,
                price.raw()
            ),
            (
                f.order_ref,
                f.executed_shares,
                f.match_number,
                yn(f.printable),
                f.execution_price
            )
        ),
        (
            Fields::OrderCancel(f),
            Body::OrderCancelled {
                reference,
                cancelled,
            },
        ) => assert_eq!((*reference, *cancelled), (f.order_ref, f.cancelled_shares)),
        (Fields::OrderDelete(f), Body::DeleteOrder { reference }) => {
            assert_eq!(*reference, f.order_ref)
        }
        (Fields::OrderReplace(f), Body::ReplaceOrder(t)) => assert_eq!(
            (t.old_reference, t.new_reference, t.shares, t.price.raw()),
            (f.original_order_ref, f.new_order_ref, f.shares, f.price)
        ),
        (Fields::Trade(f), Body::NonCrossTrade(t)) => {
            assert_eq!(t.reference, f.order_ref);
            assert_eq!(name(t.side), pick(f.side, SIDE));
            assert_eq!(
                (
                    t.shares,
                    t.stock.as_str().to_owned(),
                    t.price.raw(),
                    t.match_number
                ),
                (f.shares, stock(&f.stock), f.price, f.match_number)
            );
        }
        (Fields::CrossTrade(f), Body::CrossTrade(t)) => {
            assert_eq!(
                (
                    t.shares,
                    t.stock.as_str().to_owned(),
                    t.cross_price.raw(),
                    t.match_number
                ),
                (f.shares, stock(&f.stock), f.cross_price, f.match_number)
            );
            assert_eq!(name(t.cross_type), pick(f.cross_type, CROSS));
        }
        (Fields::BrokenTrade(f), Body::BrokenTrade { match_number }) => {
            assert_eq!(*match_number, f.match_number)
        }
        (Fields::Noii(f), Body::Imbalance(t)) => {
            assert_eq!(
                (t.paired_shares, t.imbalance_shares),
                (f.paired_shares, f.imbalance_shares)
            );
            assert_eq!(
                name(t.imbalance_direction),
                pick(
                    f.imbalance_direction,
                    &[
                        (b'B', "Buy"),
                        (b'S', "Sell"),
                        (b'N', "NoImbalance"),
                        (b'O', "InsufficientOrders"),
                    ]
                )
            );
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(
                (
                    t.far_price.raw(),
                    t.near_price.raw(),
                    t.current_ref_price.raw()
                ),
                (f.far_price, f.near_price, f.current_reference_price)
            );
            assert_eq!(name(t.cross_type), pick(f.cross_type, CROSS));
            assert_eq!(t.price_variation_indicator, f.price_variation as char);
        }
        (Fields::Rpii(f), Body::RetailPriceImprovementIndicator(t)) => {
            assert_eq!(t.stock.as_str(), stock(&f.stock));
            assert_eq!(
                name(t.interest_flag),
                pick(
                    f.interest_flag,
                    &[
                        (b'B', "RPIAvailableBuySide"),
                        (b'S', "RPIAvailableSellSide"),
                        (b'A', "RPIAvailableBothSides"),
                        (b'N', "RPINoneAvailable"),
                    ]
                )
            );
        }
        (ours, theirs) => panic!("type mismatch: ours {ours:?}, itchy {theirs:?}"),
    }
}

#[test]
fn every_field_of_every_type_agrees_with_itchy() {
    let mut gen = SessionGen::new(GenConfig {
        instruments: 50,
        seed: 11,
        mix: Mix {
            admin: 100,
            cross: 20,
            broken: 20,
            ..Mix::default()
        },
        max_live_orders: 5_000,
    });
    let mut ours = Vec::new();
    let mut buf = [0u8; 64];
    let mut file = FileWriter::new(Vec::new());
    let mut counts = [0u64; 128];
    for i in 0..200_000u64 {
        let f = gen.next(34_200_000_000_000 + i * 997);
        let n = f.encode(&mut buf).unwrap();
        counts[usize::from(f.tag())] += 1;
        // itchy cannot parse `h` and `O` (checked below instead).
        if f.tag() != b'h' && f.tag() != b'O' {
            file.write(&buf[..n]).unwrap();
            ours.push(buf[..n].to_vec());
        }
    }
    for f in gen.close() {
        let n = f.encode(&mut buf).unwrap();
        counts[usize::from(f.tag())] += 1;
        file.write(&buf[..n]).unwrap();
        ours.push(buf[..n].to_vec());
    }
    for &(tag, _, type_name) in MESSAGE_TYPES {
        assert!(
            counts[usize::from(tag)] > 0,
            "the session has no {type_name} ({:?})",
            tag as char
        );
    }
    let bytes = file.finish().unwrap();
    let mut compared = 0;
    for (theirs, mine) in MessageStream::from_reader(&bytes[..]).zip(&ours) {
        let theirs = theirs.unwrap();
        check(&itch::decode(mine).unwrap(), &theirs);
        compared += 1;
    }
    assert_eq!(compared, ours.len(), "itchy stopped early");
    assert!(compared > 190_000);
}

/// Bytes for `h` and `O` laid out from the specification's offset table,
/// field by field, independently of our views.
#[test]
fn operational_halt_and_direct_listing_match_the_specification_layout() {
    let mut h = vec![b'h'];
    h.extend_from_slice(&7u16.to_be_bytes()); // stock locate, offset 1
    h.extend_from_slice(&9u16.to_be_bytes()); // tracking, offset 3
    h.extend_from_slice(&[0, 0, 0x12, 0x34, 0x56, 0x78]); // timestamp, offset 5
    h.extend_from_slice(b"ZCTEST  "); // stock, offset 11
    h.push(b'Q'); // market code, offset 19
    h.push(b'H'); // action, offset 20
    assert_eq!(h.len(), 21);
    let Message::OperationalHalt(v) = itch::decode(&h).unwrap() else {
        panic!("not h")
    };
    assert_eq!(v.header().stock_locate, 7);
    assert_eq!(v.header().tracking_number, 9);
    assert_eq!(v.header().timestamp, 0x1234_5678);
    assert_eq!(
        (&v.stock(), v.market_code(), v.action()),
        (b"ZCTEST  ", b'Q', b'H')
    );

    let mut o = vec![b'O'];
    o.extend_from_slice(&3u16.to_be_bytes());
    o.extend_from_slice(&4u16.to_be_bytes());
    o.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
    o.extend_from_slice(b"DLCR    "); // 11
    o.push(b'Y'); // open eligibility, 19
    o.extend_from_slice(&100u32.to_be_bytes()); // min allowable, 20
    o.extend_from_slice(&200u32.to_be_bytes()); // max allowable, 24
    o.extend_from_slice(&150u32.to_be_bytes()); // near execution price, 28
    o.extend_from_slice(&123_456_789u64.to_be_bytes()); // near execution time, 32
    o.extend_from_slice(&140u32.to_be_bytes()); // lower collar, 40
    o.extend_from_slice(&160u32.to_be_bytes()); // upper collar, 44
    assert_eq!(o.len(), 48);
    let Message::DirectListing(v) = itch::decode(&o).unwrap() else {
        panic!("not O")
    };
    assert_eq!(
        (
            &v.stock(),
            v.open_eligibility(),
            v.min_allowable_price(),
            v.max_allowable_price(),
            v.near_execution_price(),
            v.near_execution_time(),
            v.lower_price_collar(),
            v.upper_price_collar()
        ),
        (b"DLCR    ", b'Y', 100, 200, 150, 123_456_789, 140, 160)
    );
    assert_eq!(v.header().timestamp, 5);
}
