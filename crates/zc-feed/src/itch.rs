//! NASDAQ TotalView-ITCH 5.0: a checked zero-copy view for every message type.
//!
//! Every message starts with the same 11 bytes: the type (1 byte, ASCII),
//! the stock locate (u16), the tracking number (u16) and a timestamp (u48,
//! nanoseconds since midnight). All integers are big-endian; prices are u32
//! with four implied decimals (u64 with eight for the circuit-breaker levels);
//! text fields are ASCII, left-justified and padded with spaces.
//!
//! [`decode`] checks the block's length against its type before a view is
//! made, so a view's accessors read fixed offsets of a fixed-size array and
//! cannot fail. Nothing is copied: a view borrows the datagram or file buffer.
//! A type this module does not know is an error the caller counts and skips
//! (the MoldUDP64 block or file record gives its length).
//!
//! Each view has a `…Fields` twin: every field owned, with `encode`, used by
//! the session generator and the tests.

/// A fixed-size big-endian field of a message.
pub trait Wire: Copy {
    /// Reads the field at `off` of a message whose length was checked.
    fn read(b: &[u8], off: usize) -> Self;
    /// Writes the field at `off`.
    fn write(&self, b: &mut [u8], off: usize);
}

impl Wire for u8 {
    #[inline]
    fn read(b: &[u8], off: usize) -> Self {
        b[off]
    }
    fn write(&self, b: &mut [u8], off: usize) {
        b[off] = *self;
    }
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            #[inline]
            fn read(b: &[u8], off: usize) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[off..off + std::mem::size_of::<$t>()]);
                <$t>::from_be_bytes(a)
            }
            fn write(&self, b: &mut [u8], off: usize) {
                b[off..off + std::mem::size_of::<$t>()].copy_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}
wire_int!(u16, u32, u64);

impl<const N: usize> Wire for [u8; N] {
    #[inline]
    fn read(b: &[u8], off: usize) -> Self {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[off..off + N]);
        a
    }
    fn write(&self, b: &mut [u8], off: usize) {
        b[off..off + N].copy_from_slice(self);
    }
}

/// Length of the header every message starts with.
pub const HEADER_LEN: usize = 11;

/// Largest timestamp: 48 bits of nanoseconds (a day is about 2⁴⁶).
pub const MAX_TIMESTAMP: u64 = (1 << 48) - 1;

/// The fields every message starts with (after its type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Header {
    /// Locate code of the instrument (0 for messages about no instrument).
    pub stock_locate: u16,
    /// NASDAQ's internal tracking number.
    pub tracking_number: u16,
    /// Nanoseconds since midnight (48 bits).
    pub timestamp: u64,
}

impl Header {
    #[inline]
    fn read(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts[2..].copy_from_slice(&b[5..11]);
        Self {
            stock_locate: u16::read(b, 1),
            tracking_number: u16::read(b, 3),
            timestamp: u64::from_be_bytes(ts),
        }
    }

    fn write(&self, b: &mut [u8]) {
        self.stock_locate.write(b, 1);
        self.tracking_number.write(b, 3);
        b[5..11].copy_from_slice(&(self.timestamp & MAX_TIMESTAMP).to_be_bytes()[2..]);
    }
}

/// Why a block is not an ITCH 5.0 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ItchError {
    /// A block of zero bytes has no type.
    #[error("empty message block")]
    Empty,
    /// A type byte this specification does not define.
    #[error("unknown ITCH message type {0:#04x}")]
    UnknownType(u8),
    /// A known type with the wrong length.
    #[error("ITCH message {:?} of {got} bytes, its type has {expected}", *tag as char)]
    BadLength {
        /// The type byte.
        tag: u8,
        /// The type's length.
        expected: usize,
        /// The block's length.
        got: usize,
    },
}

macro_rules! itch_messages {
    ($(
        $(#[$doc:meta])*
        $name:ident / $fields:ident = $tag:literal, $len:literal {
            $( $(#[$fdoc:meta])* $f:ident : $t:ty = $off:literal ),* $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct $name<'a>(&'a [u8; $len]);

            impl<'a> $name<'a> {
                /// The type byte.
                pub const TAG: u8 = $tag;
                /// The message length in bytes, type byte included.
                pub const LEN: usize = $len;

                /// The common header.
                #[inline]
                pub fn header(&self) -> Header {
                    Header::read(self.0)
                }

                /// The message bytes, type byte first.
                pub fn bytes(&self) -> &'a [u8] {
                    self.0
                }

                $(
                    $(#[$fdoc])*
                    #[inline]
                    pub fn $f(&self) -> $t {
                        <$t as Wire>::read(self.0, $off)
                    }
                )*

                /// Every field, owned.
                pub fn fields(&self) -> $fields {
                    $fields { header: self.header(), $( $f: self.$f() ),* }
                }
            }

            #[doc = concat!("Every field of [`", stringify!($name), "`], owned, to build one.")]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
            pub struct $fields {
                /// The common header.
                pub header: Header,
                $( $(#[$fdoc])* pub $f: $t, )*
            }

            impl $fields {
                /// Writes the message at the start of `out`; `None` when it does not fit.
                pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
                    let b = out.get_mut(..$len)?;
                    b[0] = $tag;
                    self.header.write(b);
                    $( Wire::write(&self.$f, b, $off); )*
                    Some($len)
                }
            }
        )*

        /// Any ITCH 5.0 message, as a view.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Message<'a> {
            $(
                #[doc = concat!("`", stringify!($tag), "`: see [`", stringify!($name), "`].")]
                $name($name<'a>),
            )*
        }

        /// Any ITCH 5.0 message, owned.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fields {
            $(
                #[doc = concat!("See [`", stringify!($fields), "`].")]
                $name($fields),
            )*
        }

        impl Fields {
            /// Writes the message at the start of `out`; `None` when it does not fit.
            pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
                match self { $( Fields::$name(f) => f.encode(out), )* }
            }

            /// The common header.
            pub fn header(&self) -> &Header {
                match self { $( Fields::$name(f) => &f.header, )* }
            }

            /// The common header, to change.
            pub fn header_mut(&mut self) -> &mut Header {
                match self { $( Fields::$name(f) => &mut f.header, )* }
            }

            /// The type byte.
            pub fn tag(&self) -> u8 {
                match self { $( Fields::$name(_) => $tag, )* }
            }
        }

        impl<'a> Message<'a> {
            /// The type byte.
            #[inline]
            pub fn tag(&self) -> u8 {
                match self { $( Message::$name(_) => $tag, )* }
            }

            /// The common header.
            #[inline]
            pub fn header(&self) -> Header {
                match self { $( Message::$name(m) => m.header(), )* }
            }

            /// The message bytes.
            pub fn bytes(&self) -> &'a [u8] {
                match self { $( Message::$name(m) => m.bytes(), )* }
            }

            /// Every field, owned.
            pub fn fields(&self) -> Fields {
                match self { $( Message::$name(m) => Fields::$name(m.fields()), )* }
            }
        }

        /// Every message type: type byte, length, name.
        pub const MESSAGE_TYPES: &[(u8, usize, &str)] = &[
            $( ($tag, $len, stringify!($name)), )*
        ];

        /// Decodes one message block (the bytes a MoldUDP64 block or a file
        /// record holds), checking its length against its type.
        #[inline]
        pub fn decode(b: &[u8]) -> Result<Message<'_>, ItchError> {
            let Some(&tag) = b.first() else {
                return Err(ItchError::Empty);
            };
            match tag {
                $(
                    $tag => match <&[u8; $len]>::try_from(b) {
                        Ok(a) => Ok(Message::$name($name(a))),
                        Err(_) => Err(ItchError::BadLength { tag, expected: $len, got: b.len() }),
                    },
                )*
                _ => Err(ItchError::UnknownType(tag)),
            }
        }

        /// The length of messages of type `tag`, when it is known.
        pub fn message_len(tag: u8) -> Option<usize> {
            match tag {
                $( $tag => Some($len), )*
                _ => None,
            }
        }
    };
}

itch_messages! {
    /// `S`: a system event (start and end of messages, system and market hours).
    SystemEvent / SystemEventFields = b'S', 12 {
        /// `O` start of messages, `S` start of system hours, `Q` start of market
        /// hours, `M` end of market hours, `E` end of system hours, `C` end of messages.
        event_code: u8 = 11,
    }
    /// `R`: the stock directory entry that names a locate code for the day.
    StockDirectory / StockDirectoryFields = b'R', 39 {
        /// Symbol, space padded.
        stock: [u8; 8] = 11,
        /// Listing market (`Q`, `G`, `S`, `N`, `A`, `P`, `Z`, `V`, space).
        market_category: u8 = 19,
        /// Financial status indicator.
        financial_status: u8 = 20,
        /// Shares in a round lot.
        round_lot_size: u32 = 21,
        /// `Y` when only round lots are accepted.
        round_lots_only: u8 = 25,
        /// Issue classification.
        issue_classification: u8 = 26,
        /// Issue sub-type (two characters).
        issue_subtype: [u8; 2] = 27,
        /// `P` live/production, `T` test.
        authenticity: u8 = 29,
        /// Short sale threshold indicator (`Y`, `N`, space).
        short_sale_threshold: u8 = 30,
        /// IPO flag (`Y`, `N`, space).
        ipo_flag: u8 = 31,
        /// LULD reference price tier (`1`, `2`, space).
        luld_tier: u8 = 32,
        /// Exchange-traded product flag (`Y`, `N`, space).
        etp_flag: u8 = 33,
        /// ETP leverage factor.
        etp_leverage_factor: u32 = 34,
        /// `Y` for an inverse ETP.
        inverse_indicator: u8 = 38,
    }
    /// `H`: the trading state of an instrument (halted, paused, trading…).
    StockTradingAction / StockTradingActionFields = b'H', 25 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// `H` halted, `P` paused, `Q` quotation only, `T` trading.
        trading_state: u8 = 19,
        /// Reserved.
        reserved: u8 = 20,
        /// Reason code (four characters).
        reason: [u8; 4] = 21,
    }
    /// `Y`: Reg SHO short sale price test restriction.
    RegShoRestriction / RegShoRestrictionFields = b'Y', 20 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// `0` none, `1` intraday drop, `2` restriction remains.
        action: u8 = 19,
    }
    /// `L`: a market participant's position in an instrument.
    MarketParticipantPosition / MarketParticipantPositionFields = b'L', 26 {
        /// Market participant identifier.
        mpid: [u8; 4] = 11,
        /// Symbol.
        stock: [u8; 8] = 15,
        /// `Y` primary market maker.
        primary_market_maker: u8 = 23,
        /// Market maker mode.
        market_maker_mode: u8 = 24,
        /// Participant state.
        participant_state: u8 = 25,
    }
    /// `V`: the market-wide circuit breaker decline levels (8 implied decimals).
    MwcbDeclineLevel / MwcbDeclineLevelFields = b'V', 35 {
        /// Level 1.
        level1: u64 = 11,
        /// Level 2.
        level2: u64 = 19,
        /// Level 3.
        level3: u64 = 27,
    }
    /// `W`: a market-wide circuit breaker level was breached.
    MwcbStatus / MwcbStatusFields = b'W', 12 {
        /// `1`, `2` or `3`.
        breached_level: u8 = 11,
    }
    /// `K`: IPO quoting period update.
    IpoQuotingPeriod / IpoQuotingPeriodFields = b'K', 28 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// Release time, seconds since midnight.
        release_time: u32 = 19,
        /// `A` anticipated, `C` cancelled or postponed.
        release_qualifier: u8 = 23,
        /// IPO price.
        ipo_price: u32 = 24,
    }
    /// `J`: limit up/limit down auction collar.
    LuldAuctionCollar / LuldAuctionCollarFields = b'J', 35 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// Reference price.
        reference_price: u32 = 19,
        /// Upper collar price.
        upper_price: u32 = 23,
        /// Lower collar price.
        lower_price: u32 = 27,
        /// Collar extension count.
        extension: u32 = 31,
    }
    /// `h`: operational halt of an instrument on one market.
    OperationalHalt / OperationalHaltFields = b'h', 21 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// `Q` Nasdaq, `B` BX, `X` PSX.
        market_code: u8 = 19,
        /// `H` halted, `T` resumed.
        action: u8 = 20,
    }
    /// `A`: a new order on the book, not attributed.
    AddOrder / AddOrderFields = b'A', 36 {
        /// Order reference number, unique for the day.
        order_ref: u64 = 11,
        /// `B` buy, `S` sell.
        side: u8 = 19,
        /// Shares.
        shares: u32 = 20,
        /// Symbol.
        stock: [u8; 8] = 24,
        /// Limit price (4 implied decimals).
        price: u32 = 32,
    }
    /// `F`: a new order on the book, attributed to a participant.
    AddOrderMpid / AddOrderMpidFields = b'F', 40 {
        /// Order reference number, unique for the day.
        order_ref: u64 = 11,
        /// `B` buy, `S` sell.
        side: u8 = 19,
        /// Shares.
        shares: u32 = 20,
        /// Symbol.
        stock: [u8; 8] = 24,
        /// Limit price (4 implied decimals).
        price: u32 = 32,
        /// Market participant identifier.
        attribution: [u8; 4] = 36,
    }
    /// `E`: part or all of a resting order executed at its price.
    OrderExecuted / OrderExecutedFields = b'E', 31 {
        /// The resting order.
        order_ref: u64 = 11,
        /// Shares executed.
        executed_shares: u32 = 19,
        /// Match number of the trade.
        match_number: u64 = 23,
    }
    /// `C`: part or all of a resting order executed at another price.
    OrderExecutedWithPrice / OrderExecutedWithPriceFields = b'C', 36 {
        /// The resting order.
        order_ref: u64 = 11,
        /// Shares executed.
        executed_shares: u32 = 19,
        /// Match number of the trade.
        match_number: u64 = 23,
        /// `Y` when the trade is printed (counts for volume).
        printable: u8 = 31,
        /// Execution price (4 implied decimals).
        execution_price: u32 = 32,
    }
    /// `X`: part of a resting order cancelled.
    OrderCancel / OrderCancelFields = b'X', 23 {
        /// The resting order.
        order_ref: u64 = 11,
        /// Shares removed.
        cancelled_shares: u32 = 19,
    }
    /// `D`: a resting order removed.
    OrderDelete / OrderDeleteFields = b'D', 19 {
        /// The resting order.
        order_ref: u64 = 11,
    }
    /// `U`: a resting order replaced by a new one (new reference, shares, price).
    OrderReplace / OrderReplaceFields = b'U', 35 {
        /// The order replaced.
        original_order_ref: u64 = 11,
        /// The new order's reference.
        new_order_ref: u64 = 19,
        /// The new order's shares.
        shares: u32 = 27,
        /// The new order's price.
        price: u32 = 31,
    }
    /// `P`: a trade against a non-displayed order.
    Trade / TradeFields = b'P', 44 {
        /// Order reference (0 since 2015).
        order_ref: u64 = 11,
        /// Side of the non-displayed order.
        side: u8 = 19,
        /// Shares.
        shares: u32 = 20,
        /// Symbol.
        stock: [u8; 8] = 24,
        /// Price.
        price: u32 = 32,
        /// Match number.
        match_number: u64 = 36,
    }
    /// `Q`: a cross (opening, closing, halt/IPO, intraday).
    CrossTrade / CrossTradeFields = b'Q', 40 {
        /// Shares matched.
        shares: u64 = 11,
        /// Symbol.
        stock: [u8; 8] = 19,
        /// Cross price.
        cross_price: u32 = 27,
        /// Match number.
        match_number: u64 = 31,
        /// `O`, `C`, `H` or `I`.
        cross_type: u8 = 39,
    }
    /// `B`: a trade was broken.
    BrokenTrade / BrokenTradeFields = b'B', 19 {
        /// Match number of the broken trade.
        match_number: u64 = 11,
    }
    /// `I`: net order imbalance indicator before a cross.
    Noii / NoiiFields = b'I', 50 {
        /// Shares paired at the current reference price.
        paired_shares: u64 = 11,
        /// Shares not paired.
        imbalance_shares: u64 = 19,
        /// `B`, `S`, `N` or `O`.
        imbalance_direction: u8 = 27,
        /// Symbol.
        stock: [u8; 8] = 28,
        /// Far indicative clearing price.
        far_price: u32 = 36,
        /// Near indicative clearing price.
        near_price: u32 = 40,
        /// Current reference price.
        current_reference_price: u32 = 44,
        /// `O`, `C`, `H` or `A`.
        cross_type: u8 = 48,
        /// Price variation indicator.
        price_variation: u8 = 49,
    }
    /// `N`: retail price improvement indicator.
    Rpii / RpiiFields = b'N', 20 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// `B`, `S`, `A` or `N`.
        interest_flag: u8 = 19,
    }
    /// `O`: direct listing with capital raise price discovery.
    DirectListing / DirectListingFields = b'O', 48 {
        /// Symbol.
        stock: [u8; 8] = 11,
        /// `N` not eligible, `Y` eligible.
        open_eligibility: u8 = 19,
        /// Minimum allowable price.
        min_allowable_price: u32 = 20,
        /// Maximum allowable price.
        max_allowable_price: u32 = 24,
        /// Near execution price.
        near_execution_price: u32 = 28,
        /// Near execution time, nanoseconds since midnight.
        near_execution_time: u64 = 32,
        /// Lower price range collar.
        lower_price_collar: u32 = 40,
        /// Upper price range collar.
        upper_price_collar: u32 = 44,
    }
}

/// Longest message of the specification (`I`, 50 bytes).
pub const MAX_MESSAGE_LEN: usize = 50;

/// An 8-byte symbol field as text, without its padding.
pub fn symbol_str(stock: &[u8; 8]) -> &str {
    let end = stock.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    std::str::from_utf8(&stock[..end]).unwrap_or("?")
}

/// A symbol as the 8-byte padded field; `None` when longer than 8 bytes or not ASCII.
pub fn symbol_field(symbol: &str) -> Option<[u8; 8]> {
    if symbol.len() > 8 || !symbol.is_ascii() {
        return None;
    }
    let mut f = [b' '; 8];
    f[..symbol.len()].copy_from_slice(symbol.as_bytes());
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_length_and_round_trips() {
        assert_eq!(MESSAGE_TYPES.len(), 23);
        for &(tag, len, name) in MESSAGE_TYPES {
            assert!(len <= MAX_MESSAGE_LEN, "{name}");
            let mut b = vec![0u8; len];
            b[0] = tag;
            let m = decode(&b).unwrap();
            assert_eq!(m.tag(), tag);
            let mut out = vec![0u8; len];
            assert_eq!(m.fields().encode(&mut out), Some(len));
            assert_eq!(out, b);
            assert_eq!(
                decode(&b[..len - 1]),
                Err(ItchError::BadLength {
                    tag,
                    expected: len,
                    got: len - 1
                })
            );
            b.push(0);
            assert!(decode(&b).is_err(), "{name}: one byte too many");
        }
        assert_eq!(decode(&[]), Err(ItchError::Empty));
        assert_eq!(decode(b"z"), Err(ItchError::UnknownType(b'z')));
    }

    #[test]
    fn header_fields_sit_at_their_offsets() {
        let f = OrderDeleteFields {
            header: Header {
                stock_locate: 0x0102,
                tracking_number: 0x0304,
                timestamp: 0x0506_0708_090a,
            },
            order_ref: 0x1112_1314_1516_1718,
        };
        let mut b = [0u8; 19];
        f.encode(&mut b).unwrap();
        assert_eq!(
            b,
            [b'D', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
    }

    #[test]
    fn symbols_are_padded_and_trimmed() {
        let f = symbol_field("AAPL").unwrap();
        assert_eq!(&f, b"AAPL    ");
        assert_eq!(symbol_str(&f), "AAPL");
        assert!(symbol_field("TOOLONGSYM").is_none());
    }
}
