//! Units used everywhere in a scenario: durations (`250ms`, `26s`, `2m`, `1h30m`), rates
//! (`300/s`, `18000/min`), shares (`80%`), scale fractions (`1/100`) and bandwidths
//! (`20Mbit/s`), and the same units written back for people (`format_duration`, `fmt_time`:
//! the plan's messages, the report's axes and tables).
//!
//! Parsing is strict on purpose: a bare number is an error that says which unit to add, because
//! `peak: 6000` could mean per second or per minute and a wrong guess costs a production drill.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written with units, e.g. `250ms`, `26s`, `2m`, `1h30m`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Dur(pub Duration);

/// A rate in events per second, written `300/s`, `18000/min` or `50/h`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(pub f64);

/// A share between 0 and 1, written as a percentage: `80%`, `12.5%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Share(pub f64);

/// A bandwidth in bits per second, written `500kbit/s`, `20Mbit/s` or `1Gbit/s`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Bandwidth(pub f64);

impl Dur {
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

fn number_prefix(s: &str) -> Option<(f64, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n: f64 = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// Parses `250ms`, `26s`, `2m`, `1h30m`, `1h30m15s`, `0.5s`. Units must descend (h, m, s, ms)
/// and appear once each.
pub fn parse_duration(src: &str) -> Result<Duration, String> {
    let s = src.trim();
    let hint = "a duration with a unit, like 250ms, 26s, 2m or 1h30m";
    if s.is_empty() {
        return Err(format!("expected {hint}, got an empty value"));
    }
    let mut rest = s;
    let mut total = 0f64;
    let mut last_rank = 0u8;
    while !rest.is_empty() {
        let Some((n, after)) = number_prefix(rest) else {
            return Err(format!("expected {hint}, got `{src}`"));
        };
        let (unit, mult, rank, len) = if after.starts_with("ms") {
            ("ms", 0.001, 4, 2)
        } else if after.starts_with('h') {
            ("h", 3600.0, 1, 1)
        } else if after.starts_with('m') {
            ("m", 60.0, 2, 1)
        } else if after.starts_with('s') {
            ("s", 1.0, 3, 1)
        } else if after.is_empty() {
            return Err(format!("`{src}` has no unit: expected {hint}"));
        } else {
            return Err(format!(
                "`{src}` has an unknown unit `{}`: expected {hint}",
                after.trim()
            ));
        };
        if rank <= last_rank {
            return Err(format!(
                "`{src}`: unit `{unit}` is repeated or out of order: expected {hint}"
            ));
        }
        last_rank = rank;
        total += n * mult;
        rest = &after[len..];
    }
    if !total.is_finite() || total > 1.0e9 {
        return Err(format!("`{src}` is too long a duration"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses `300/s`, `18000/min`, `5/h` (also `/sec`, `/m`, `/minute`, `/hour`) into events per second.
pub fn parse_rate(src: &str) -> Result<f64, String> {
    let s = src.trim();
    let hint = "a rate with a unit, like 300/s or 18000/min";
    let Some((num, unit)) = s.split_once('/') else {
        return Err(match rate_suggestion(s) {
            Some(fix) if s.parse::<f64>().is_ok() => {
                format!("`{src}` has no unit: expected {hint}; write it as `{fix}`")
            }
            Some(fix) => {
                format!("`{src}` is not a rate flashcrowd reads: write it as `{fix}` ({hint})")
            }
            None => format!("`{src}` has no unit: expected {hint}"),
        });
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected {hint}, got `{src}`"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("`{src}`: a rate must be zero or positive"));
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => {
            return Err(format!(
                "`{src}` has an unknown unit `/{other}`: expected {hint}"
            ))
        }
    };
    let r = n / per;
    if r > MAX_RATE {
        return Err(format!(
            "`{src}` is more than {} per second, beyond what any set of generators can send: \
             split a larger rehearsal with --scale or check the unit",
            MAX_RATE as u64
        ));
    }
    Ok(r)
}

/// The highest rate a scenario may ask for: 100 million per second.
pub const MAX_RATE: f64 = 1e8;

/// Parses `80%` or `12.5%` into 0.8 or 0.125.
pub fn parse_share(src: &str) -> Result<f64, String> {
    let s = src.trim();
    let Some(num) = s.strip_suffix('%') else {
        return Err(format!(
            "`{src}` is not a share: expected a percentage like 80%"
        ));
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{src}` is not a share: expected a percentage like 80%"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{src}`: a share must be between 0% and 100%"));
    }
    Ok(n / 100.0)
}

/// Parses a scale factor: `1/100`, `0.01`, `2`, `10%`.
pub fn parse_fraction(src: &str) -> Result<f64, String> {
    let s = src.trim();
    let v = if let Some((a, b)) = s.split_once('/') {
        let a: f64 = a.trim().parse().map_err(|_| bad_fraction(src))?;
        let b: f64 = b.trim().parse().map_err(|_| bad_fraction(src))?;
        if b == 0.0 {
            return Err(bad_fraction(src));
        }
        a / b
    } else if s.ends_with('%') {
        parse_share(s)?
    } else {
        s.parse().map_err(|_| bad_fraction(src))?
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{src}`: a scale must be greater than zero"));
    }
    Ok(v)
}

fn bad_fraction(src: &str) -> String {
    format!("`{src}` is not a scale: expected a fraction like 1/100 or a number like 0.5")
}

/// Formats a duration the way a scenario writes it (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms_total = d.as_millis();
    if ms_total == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}us", d.as_micros())
        };
    }
    let h = ms_total / 3_600_000;
    let m = (ms_total / 60_000) % 60;
    let s = (ms_total / 1000) % 60;
    let ms = ms_total % 1000;
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    if ms > 0 {
        out += &format!("{ms}ms");
    }
    out
}

/// `8000 rps`, `8000 qps`, `50 per minute`, `8000`: the rate written the way flashcrowd reads
/// it (`8000/s`, `50/min`), when the number is clear and the unit a common spelling.
fn rate_suggestion(s: &str) -> Option<String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, word) = s.split_at(split);
    let num = num.replace('_', "");
    num.parse::<f64>().ok()?;
    let word = word.trim().to_ascii_lowercase();
    let per = match word.as_str() {
        "" | "rps" | "qps" | "tps" | "ops" | "req/s" | "r/s" | "per second" | "per sec" | "ps"
        | "per s" | "hz" | "/sec" => "s",
        "rpm" | "per minute" | "per min" => "min",
        "rph" | "per hour" => "h",
        _ => return None,
    };
    Some(format!("{num}/{per}"))
}

/// Formats a rate per second compactly (`300/s`, `0.5/s`).
/// Parses `500kbit/s`, `20Mbit/s`, `1Gbit/s` or `9600bit/s` into bits per second.
pub fn parse_bandwidth(src: &str) -> Result<f64, String> {
    let s = src.trim();
    let hint = "a bandwidth like 500kbit/s, 20Mbit/s or 1Gbit/s";
    let Some((n, unit)) = number_prefix(s) else {
        return Err(format!("expected {hint}, got `{src}`"));
    };
    let mult = match unit.trim() {
        "bit/s" => 1.0,
        "kbit/s" => 1e3,
        "Mbit/s" => 1e6,
        "Gbit/s" => 1e9,
        "" => return Err(format!("`{src}` has no unit: expected {hint}")),
        u => {
            return Err(format!(
            "unknown unit `{u}` in `{src}`: expected {hint} (bits per second; 1 MB/s is 8Mbit/s)"
        ))
        }
    };
    if n <= 0.0 {
        return Err(format!("the bandwidth `{src}` must be above zero"));
    }
    Ok(n * mult)
}

/// `20Mbit/s`, `500kbit/s`: the largest unit that keeps the number at or above 1.
pub fn format_bandwidth(bps: f64) -> String {
    let (v, u) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    let v = (v * 1000.0).round() / 1000.0;
    format!("{v}{u}")
}

pub fn format_rate(r: f64) -> String {
    if (r - r.round()).abs() < 1e-9 {
        format!("{}/s", r.round() as i64)
    } else {
        format!("{r:.2}/s")
    }
}

fn de_str<'de, D: Deserializer<'de>>(d: D, what: &str, example: &str) -> Result<String, D::Error> {
    // Accept any scalar so that a bare number yields a helpful message instead of
    // "invalid type: integer".
    let v = serde_yaml::Value::deserialize(d)?;
    match v {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) if what.starts_with("a rate") => {
            Err(serde::de::Error::custom(format!(
                "`{n}` has no unit: expected {what}, like {example}; write it as `{n}/s` (or `{n}/min`)"
            )))
        }
        serde_yaml::Value::Number(n) => Err(serde::de::Error::custom(format!(
            "`{n}` has no unit: expected {what}, like {example}"
        ))),
        other => Err(serde::de::Error::custom(format!(
            "expected {what}, like {example}, got {}",
            describe(&other)
        ))),
    }
}

pub(crate) fn describe(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "nothing",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_str(d, "a duration with a unit", "250ms, 26s, 2m or 1h30m")?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}
impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_str(d, "a rate with a unit", "300/s or 18000/min")?;
        parse_rate(&s).map(Rate).map_err(serde::de::Error::custom)
    }
}
impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_str(d, "a share as a percentage", "80%")?;
        parse_share(&s).map(Share).map_err(serde::de::Error::custom)
    }
}
impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_str(d, "a bandwidth with a unit", "20Mbit/s or 500kbit/s")?;
        parse_bandwidth(&s)
            .map(Bandwidth)
            .map_err(serde::de::Error::custom)
    }
}
impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_bandwidth(self.0))
    }
}
impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rate(self.0))
    }
}
impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}%", self.0 * 100.0))
    }
}
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Formats seconds for an axis or a table as people read them: `0s`, `250ms`, `1.5s`, `26s`,
/// `2m30s`, `1h30m`.
pub fn fmt_time(t: f64) -> String {
    let t = if t.is_finite() { t.max(0.0) } else { 0.0 };
    if t == 0.0 {
        return "0s".into();
    }
    if t < 1.0 {
        let ms = (t * 1000.0).round();
        if ms < 1000.0 {
            return format!("{}ms", ms.max(1.0) as u64);
        }
    }
    if t < 60.0 {
        let s = format!("{t:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s != "60" {
            return format!("{s}s");
        }
    }
    // A minute or more: whole seconds, written as `format_duration` writes them (`2m30s`).
    format_duration(Duration::from_secs(t.round() as u64))
}

/// Seconds (negative ones as 0) as a duration with units, like `format_duration`.
pub fn format_secs(s: f64) -> String {
    format_duration(Duration::from_secs_f64(s.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("26s").unwrap(), Duration::from_secs(26));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("1m30s500ms").unwrap(),
            Duration::from_millis(90_500)
        );
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn durations_without_units_or_with_words_are_rejected() {
        assert!(parse_duration("26").unwrap_err().contains("no unit"));
        assert!(parse_duration("26 seconds")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("30m1h")
            .unwrap_err()
            .contains("out of order"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn rates_normalize_to_per_second() {
        assert_eq!(parse_rate("300/s").unwrap(), 300.0);
        assert_eq!(parse_rate("18000/min").unwrap(), 300.0);
        assert_eq!(parse_rate("3600/h").unwrap(), 1.0);
        assert!(parse_rate("6000").unwrap_err().contains("no unit"));
        assert!(parse_rate("6000")
            .unwrap_err()
            .ends_with("write it as `6000/s`"));
        assert!(parse_rate("8000 rps")
            .unwrap_err()
            .contains("write it as `8000/s`"));
        assert!(parse_rate("50 per minute")
            .unwrap_err()
            .contains("write it as `50/min`"));
        assert!(parse_rate("many rps").unwrap_err().contains("no unit"));
        assert!(parse_rate("6000/fortnight")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_rate("-1/s").is_err());
    }

    #[test]
    fn shares_are_percentages() {
        assert_eq!(parse_share("80%").unwrap(), 0.8);
        assert_eq!(parse_share("12.5%").unwrap(), 0.125);
        assert!(parse_share("0.8").is_err());
        assert!(parse_share("120%").is_err());
    }

    #[test]
    fn fractions_for_scale() {
        assert_eq!(parse_fraction("1/100").unwrap(), 0.01);
        assert_eq!(parse_fraction("0.5").unwrap(), 0.5);
        assert_eq!(parse_fraction("10%").unwrap(), 0.1);
        assert!(parse_fraction("1/0").is_err());
        assert!(parse_fraction("0").is_err());
    }

    #[test]
    fn bandwidths_are_bits_per_second() {
        assert_eq!(parse_bandwidth("20Mbit/s").unwrap(), 20e6);
        assert_eq!(parse_bandwidth("500kbit/s").unwrap(), 500e3);
        assert_eq!(parse_bandwidth("1.5Gbit/s").unwrap(), 1.5e9);
        assert!(parse_bandwidth("20").unwrap_err().contains("no unit"));
        assert!(parse_bandwidth("20MB/s").unwrap_err().contains("8Mbit/s"));
        assert!(parse_bandwidth("0Mbit/s").is_err());
        assert_eq!(format_bandwidth(1.6e6), "1.6Mbit/s");
        assert_eq!(format_bandwidth(768e3), "768kbit/s");
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
    }
}
