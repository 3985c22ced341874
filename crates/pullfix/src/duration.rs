//! Durations, the kubectl way, in one place: parsing what a person types
//! (`--request-timeout`, `--timeout`, `--probe-timeout`) and printing a
//! duration back (`format`, the same syntax; `age`, kubectl's AGE column).
//!
//! Parsing follows client-go's `ParseTimeout`: a bare integer is seconds,
//! anything else is Go's `time.ParseDuration` (`500ms`, `2m`, `1h30m`,
//! `1.5h`; units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). Unlike Go it refuses
//! negative durations; like Go it refuses anything over 2562047h (a Go
//! duration's range), so nothing downstream can overflow adding it to a
//! clock.

use std::time::Duration;

use crate::input::{Invalid, shown};

/// The longest duration accepted: Go's `time.Duration` range (i64
/// nanoseconds, about 292 years).
pub(crate) const MAX: Duration = Duration::from_nanos(i64::MAX as u64);

const HELP: &str =
    "write a number and a unit, e.g. 30s, 500ms, 2m, 1h30m (a bare number is seconds)";

/// Parses `0`, `30`, `30s`, `500ms`, `2m`, `1h`, `1h30m`, `1.5s`.
pub fn parse(s: &str) -> Result<Duration, Invalid> {
    let bad = |why: &str| Invalid::new(format!("invalid duration `{}`: {why}", shown(s)), HELP);
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    if t.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let too_long = || bad("it is longer than 2562047h");
    // A bare integer is seconds (client-go).
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = t.parse().map_err(|_| too_long())?;
        let d = Duration::from_secs(secs);
        return if d > MAX { Err(too_long()) } else { Ok(d) };
    }
    let mut rest = t;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = &r[..n];
            rest = &r[n..];
        }
        if int.is_empty() && frac.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(bad("a number without a unit (use ms, s, m or h)")),
            _ => {
                return Err(bad(&format!(
                    "unknown unit `{}` (use ms, s, m or h)",
                    shown(unit)
                )));
            }
        };
        // Whole part; a long run of digits overflows, which is too long.
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_long())?
        };
        let mut nanos = whole.checked_mul(nanos_per).ok_or_else(too_long)?;
        // The fraction, to the nanosecond (extra digits are dropped, as Go does).
        let mut scale = nanos_per;
        for d in frac.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos = nanos
                .checked_add(u128::from(d - b'0') * scale)
                .ok_or_else(too_long)?;
        }
        total = total.checked_add(nanos).ok_or_else(too_long)?;
        if total > MAX.as_nanos() {
            return Err(too_long());
        }
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_long())?;
    // `total % 1e9` is below 1e9, so it fits in a u32.
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// A duration in the syntax [`parse`] reads: `0s`, `45s`, `1m30s`, `5m`,
/// `1h`, `2h5m`, `500ms`; whole seconds unless it is under a second.
pub(crate) fn format(d: Duration) -> String {
    if d < Duration::from_secs(1) && !d.is_zero() {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// kubectl's AGE (apimachinery `duration.HumanDuration`): `45s`, `119s`,
/// `5m3s`, `42m`, `3h25m`, `20h`, `2d5h`, `30d`, `3y10d`. From whole
/// seconds, which may be negative: `0s` for a second of clock skew,
/// `<invalid>` for more.
pub fn age(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubectl_forms() {
        let ok = |s: &str| parse(s).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok(" 30s "), Duration::from_secs(30));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
    }

    #[test]
    fn refuses_garbage_with_help() {
        for s in [
            "",
            " ",
            "soon",
            "3d",
            "-1s",
            "-5",
            "NaN",
            "nan",
            "inf",
            "1e3s",
            "s",
            ".s",
            "1.2.3s",
            "1h30",
            "30 s",
            "100000000000000000000s",
            "100000000000000000000",
            "2562048h",
            "99999999999999999999999999999999999999999h",
            "18446744073709551616",
            "1\ns",
        ] {
            let e = parse(s).unwrap_err();
            let text = e.to_string();
            assert_eq!(text.lines().count(), 2, "{s:?}: {text}");
            assert!(text.contains("\nhelp: "), "{s:?}: {text}");
        }
        assert!(parse("-1s").unwrap_err().message.contains("negative"));
        assert!(
            parse("100000000000000000000s")
                .unwrap_err()
                .message
                .contains("longer")
        );
    }

    #[test]
    fn formats_in_the_syntax_it_parses() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(7500)), "2h5m");
        assert_eq!(format(Duration::from_secs(3601)), "1h1s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        for secs in [0, 1, 59, 60, 61, 3599, 3600, 86_400, 90_061] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }

    #[test]
    fn ages_match_kubectl() {
        assert_eq!(age(-5), "<invalid>");
        assert_eq!(age(-1), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(5 * 60 + 3), "5m3s");
        assert_eq!(age(5 * 60), "5m");
        assert_eq!(age(42 * 60 + 10), "42m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(3 * 3600 + 25 * 60), "3h25m");
        assert_eq!(age(20 * 3600), "20h");
        assert_eq!(age((2 * 24 + 5) * 3600), "2d5h");
        assert_eq!(age(30 * 24 * 3600), "30d");
        assert_eq!(age((3 * 365 + 10) * 24 * 3600), "3y10d");
        assert_eq!(age(i64::MAX), format!("{}y", i64::MAX / 3600 / 24 / 365));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC*") {
                let _ = parse(&s);
            }

            #[test]
            fn never_panics_on_duration_like_text(s in "[-+0-9.]{0,30}(ns|us|µs|ms|s|m|h|d|)[0-9.]{0,25}[smh]?") {
                if let Ok(d) = parse(&s) {
                    prop_assert!(d <= MAX);
                }
            }

            #[test]
            fn format_round_trips(secs in 0u64..=(MAX.as_secs())) {
                let d = Duration::from_secs(secs);
                prop_assert_eq!(parse(&format(d)).unwrap(), d);
            }

            #[test]
            fn age_never_panics(secs in any::<i64>()) {
                let _ = age(secs);
            }
        }
    }
}
