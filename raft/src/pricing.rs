//! The price of a lease: `max(min_charge, ceil(bytes × seconds × rate / (2^30 × 86400)))`.

use serde::{Deserialize, Serialize};

pub const GIB: u128 = 1 << 30;
const SECONDS_PER_DAY: u128 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    /// Micro-USDC per GiB-day.
    pub rate_micros_per_gb_day: u64,
    /// The floor of every charge, micro-USDC.
    pub min_charge_micros: u64,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            rate_micros_per_gb_day: 1_000,
            min_charge_micros: 29,
        }
    }
}

impl Pricing {
    /// Price in micro-USDC, saturating at `u64::MAX` (which no balance can pay).
    pub fn price_micros(&self, bytes: u64, seconds: u64) -> u64 {
        self.raw_micros(bytes, seconds).max(self.min_charge_micros)
    }

    /// Storage of `bytes` for `seconds` at the rate, rounded up, before the minimum.
    pub fn raw_micros(&self, bytes: u64, seconds: u64) -> u64 {
        let numerator = (bytes as u128 * seconds as u128).checked_mul(self.rate_micros_per_gb_day as u128);
        let raw = numerator.map_or(u128::MAX, |n| n.div_ceil(GIB * SECONDS_PER_DAY));
        u64::try_from(raw).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's worked example: 1 MiB for one hour costs the 29 micro-USDC minimum.
    #[test]
    fn small_leases_pay_the_minimum() {
        assert_eq!(Pricing::default().price_micros(1 << 20, 3600), 29);
    }

    /// One GiB for one day at the default rate costs exactly the rate.
    #[test]
    fn one_gib_day_costs_the_rate() {
        assert_eq!(Pricing::default().price_micros(1 << 30, 86_400), 1_000);
    }

    /// Fractions round up, never down.
    #[test]
    fn rounds_up() {
        let p = Pricing {
            rate_micros_per_gb_day: 1_000,
            min_charge_micros: 0,
        };
        assert_eq!(p.price_micros((1 << 30) + 1, 86_400), 1_001);
        assert_eq!(p.price_micros(1, 1), 1);
        assert_eq!(p.price_micros(0, 86_400), 0);
    }

    /// Absurd inputs saturate instead of overflowing.
    #[test]
    fn saturates() {
        let p = Pricing {
            rate_micros_per_gb_day: u64::MAX,
            min_charge_micros: 0,
        };
        assert_eq!(p.price_micros(u64::MAX, u64::MAX), u64::MAX);
    }
}
