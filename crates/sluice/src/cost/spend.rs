//! The spend cap: money spent plus money reserved by requests in flight never passes it.
//!
//! A request reserves the most it can cost (its prompt and its whole output allowance at
//! the model's prices) when it is admitted for the first time, and gives the reservation
//! back for what it really cost when it ends. Admission stops at the first request whose
//! reservation would take spent plus reserved past the cap; what is in flight drains.

/// Why admission stopped for money.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CapStop {
    /// The next request could cost more than is left under the cap.
    Reached {
        /// Dollars spent so far (earlier runs included) when admission stopped.
        spent: f64,
        /// Dollars reserved by requests in flight then.
        reserved: f64,
        /// The cap.
        cap: f64,
    },
    /// A request's model has no price, so what it costs cannot be kept under the cap.
    Unpriced {
        /// The model as the request names it (empty when it names none).
        model: String,
    },
}

impl CapStop {
    /// A stable name, for machines.
    pub const fn code(&self) -> &'static str {
        match self {
            CapStop::Reached { .. } => "spend_cap",
            CapStop::Unpriced { .. } => "unpriced_model",
        }
    }
}

impl std::fmt::Display for CapStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CapStop::Reached {
                spent,
                reserved,
                cap,
            } => write!(
                f,
                "spent ${spent:.4} with ${reserved:.4} reserved by requests in flight; the next request could pass the cap of ${cap:.2}"
            ),
            CapStop::Unpriced { model } => write!(
                f,
                "model `{model}` has no price, so a spend cap cannot hold; give the price table a price for it"
            ),
        }
    }
}

/// Money spent and reserved against a cap, in US dollars.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendCap {
    cap: f64,
    spent: f64,
    reserved: f64,
}

impl SpendCap {
    /// A cap of `cap` dollars of which `spent_before` (by earlier runs of the same batch)
    /// is already gone.
    pub fn new(cap: f64, spent_before: f64) -> Self {
        SpendCap {
            cap,
            spent: spent_before.max(0.0),
            reserved: 0.0,
        }
    }

    /// The cap.
    pub fn cap(&self) -> f64 {
        self.cap
    }

    /// Dollars spent, earlier runs included.
    pub fn spent(&self) -> f64 {
        self.spent
    }

    /// Dollars reserved by requests in flight.
    pub fn reserved(&self) -> f64 {
        self.reserved
    }

    /// Reserves `amount` if spent plus reserved stays within the cap.
    pub fn try_reserve(&mut self, amount: f64) -> Result<(), CapStop> {
        if self.spent + self.reserved + amount > self.cap {
            return Err(CapStop::Reached {
                spent: self.spent,
                reserved: self.reserved,
                cap: self.cap,
            });
        }
        self.reserved += amount;
        Ok(())
    }

    /// A request that reserved `reserved` ended having cost `cost`.
    pub fn settle(&mut self, reserved: f64, cost: f64) {
        self.reserved = (self.reserved - reserved).max(0.0);
        self.spent += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_before_the_cap_and_settle_to_what_was_spent() {
        let mut cap = SpendCap::new(1.0, 0.25);
        assert!(cap.try_reserve(0.5).is_ok());
        // 0.25 spent + 0.5 reserved + 0.3 > 1.0
        assert!(matches!(
            cap.try_reserve(0.3),
            Err(CapStop::Reached { cap: c, .. }) if c == 1.0
        ));
        cap.settle(0.5, 0.1);
        assert!((cap.spent() - 0.35).abs() < 1e-12);
        assert_eq!(cap.reserved(), 0.0);
        assert!(cap.try_reserve(0.6).is_ok());
        assert!(cap.try_reserve(0.1).is_err());
    }
}
