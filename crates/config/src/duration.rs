//! Go `time.ParseDuration`, which is what KubeSphere's durations are.
//!
//! Written by hand rather than with humantime: humantime also accepts `1d`, `2 days` and
//! spaces, which KubeSphere would reject, and a file that works here must work there.

use std::time::Duration;

/// Nanoseconds per unit, as in Go's `unitMap`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ (micro sign)
    ("\u{3bc}s", 1_000), // μ (Greek mu)
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's limit: a `time.Duration` is an `int64` of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration string: `10m0s`, `2h`, `168h`, `1h30m`, `1.5h`, `300ms`, `0`, `0s`.
///
/// Units are `ns`, `us` (or `µs`), `ms`, `s`, `m` and `h`; there is no `d`. A number without a
/// unit is only accepted for `0`. Negative durations are rejected, and so are values beyond
/// Go's limit (about 292 years).
///
/// # Errors
/// A message saying what is wrong with `s` (the message quotes `s`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration {s:?}: {why}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid("empty; write e.g. `2h`, `30m` or `10s`"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        rest = after;
        // Fraction.
        let mut frac_digits = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            (frac_digits, rest) = after_dot.split_at(len);
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid("expected a number"));
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_len);
        rest = after;
        if unit.is_empty() {
            return Err(invalid(
                "missing unit; units are ns, us, ms, s, m, h (no d)",
            ));
        }
        let Some(&(_, per_unit)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(invalid(&format!(
                "unknown unit {unit:?}; units are ns, us, ms, s, m, h (no d: write 24h for a day)"
            )));
        };
        let overflow = || invalid("too large (the limit is about 292 years)");
        let mut value: u128 = 0;
        for d in int_digits.bytes() {
            value = value * 10 + u128::from(d - b'0');
            if value > MAX_NANOS {
                return Err(overflow());
            }
        }
        value = value
            .checked_mul(per_unit)
            .filter(|v| *v <= MAX_NANOS)
            .ok_or_else(overflow)?;
        // Digits past the 18th cannot matter at nanosecond resolution of an hour.
        let (mut numerator, mut scale) = (0u128, 1u128);
        for d in frac_digits.bytes().take(18) {
            numerator = numerator * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        value += numerator * per_unit / scale;
        total = total
            .checked_add(value)
            .filter(|v| *v <= MAX_NANOS)
            .ok_or_else(overflow)?;
    }
    if negative && total != 0 {
        return Err(invalid("negative durations are not allowed"));
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| invalid("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_go_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_go_forms() {
        assert_eq!(ok("10m0s"), Duration::from_secs(600));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("168h"), Duration::from_secs(168 * 3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2h0m0s"), Duration::from_secs(7200));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("1us"), Duration::from_micros(1));
        assert_eq!(ok("1\u{b5}s"), Duration::from_micros(1));
        assert_eq!(ok("1\u{3bc}s"), Duration::from_micros(1));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1h1m1s1ms1us1ns"), Duration::new(3661, 1_001_001));
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("0.000000001s"), Duration::from_nanos(1));
        assert_eq!(
            ok("2562047h47m16.854775807s"),
            Duration::from_nanos(i64::MAX as u64)
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "7200",
            "1d",
            "2 h",
            " 2h",
            "2h ",
            "h",
            ".s",
            "1.5",
            "-5s",
            "-1h",
            "1hh",
            "1H",
            "+",
            "-",
            "1e3s",
            "2562047h47m16.854775808s",
            "99999999999999999999h",
            "\u{0}",
        ] {
            assert!(
                parse_go_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let e = parse_go_duration("1d").unwrap_err();
        assert!(e.contains("unknown unit \"d\""), "{e}");
        let e = parse_go_duration("7200").unwrap_err();
        assert!(e.contains("missing unit"), "{e}");
    }
}
