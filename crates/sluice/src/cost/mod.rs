//! What a batch costs: a price table ([`PriceTable`], built in and extendable from TOML),
//! the price of a response's usage, and a spend cap ([`SpendCap`]) that stops admitting
//! requests before the money runs past it.
//!
//! An unknown model has no price: its tokens are counted and its cost is reported as
//! unknown, never guessed.

mod builtin;
mod prices;
mod spend;

pub use prices::{ModelWindow, Price, PriceError, PriceTable};
pub use spend::{CapStop, SpendCap};
