//! Summaries of repeated measurements, the same for `zc bench` and every
//! benchmark example: a median with its range.

/// Median and range of one figure over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// Of `values` (empty gives zeros).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `(median, min, max)`.
    pub fn parts(&self) -> (f64, f64, f64) {
        (self.median, self.min, self.max)
    }

    /// `median [min–max]` with `f` formatting each number.
    pub fn show(&self, f: impl Fn(f64) -> String) -> String {
        format!("{} [{}–{}]", f(self.median), f(self.min), f(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_and_nothing() {
        assert_eq!(Spread::of([3.0, 1.0, 2.0]).parts(), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).parts(), (2.5, 1.0, 4.0));
        assert_eq!(Spread::of([f64::NAN]).parts(), (0.0, 0.0, 0.0));
    }
}
