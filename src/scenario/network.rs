//! `clients.NAME.network`: the network a client's connections cross, as a preset name or as
//! `{ rtt, jitter, down, up }`. This file owns the presets and their figures; the engine
//! emulates them (`engine::transport::network`).
//!
//! | preset | rtt | jitter | down | up | from |
//! |---|---|---|---|---|---|
//! | `3g` | 150ms | 0 | 1.6Mbit/s | 768kbit/s | WebPageTest's "3G Fast" connectivity profile |
//! | `4g` | 80ms | 20ms | 20Mbit/s | 5Mbit/s | the design's 4G phone (DESIGN.md), between WebPageTest's "4G" (170 ms, 9 Mbit/s) and "LTE" (70 ms, 12 Mbit/s) |
//! | `5g` | 20ms | 5ms | 100Mbit/s | 20Mbit/s | round figures of our own for a mid-band 5G phone (no standard profile) |
//! | `wifi` | 10ms | 2ms | 50Mbit/s | 20Mbit/s | round figures of our own for home Wi-Fi on a fixed line |
//! | `cable` | 28ms | 0 | 5Mbit/s | 1Mbit/s | WebPageTest's "Cable" connectivity profile |

use super::units::{format_bandwidth, Bandwidth, Dur};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// A client's network, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    Preset(String),
    Custom(NetworkSpec),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Round-trip time.
    pub rtt: Dur,
    /// Round trips vary by ± this much (each direction by ± half of it).
    #[serde(default)]
    pub jitter: Option<Dur>,
    /// Server-to-client bandwidth; unlimited when absent.
    #[serde(default)]
    pub down: Option<Bandwidth>,
    /// Client-to-server bandwidth; unlimited when absent.
    #[serde(default)]
    pub up: Option<Bandwidth>,
}

/// The figures a network stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub rtt: Duration,
    pub jitter: Duration,
    /// Bits per second; None: unlimited.
    pub down_bps: Option<f64>,
    pub up_bps: Option<f64>,
}

const fn preset(rtt_ms: u64, jitter_ms: u64, down_bps: f64, up_bps: f64) -> Figures {
    Figures {
        rtt: Duration::from_millis(rtt_ms),
        jitter: Duration::from_millis(jitter_ms),
        down_bps: Some(down_bps),
        up_bps: Some(up_bps),
    }
}

/// The presets, by name (figures and sources in the module docs).
pub const PRESETS: &[(&str, Figures)] = &[
    ("3g", preset(150, 0, 1.6e6, 768e3)),
    ("4g", preset(80, 20, 20e6, 5e6)),
    ("5g", preset(20, 5, 100e6, 20e6)),
    ("wifi", preset(10, 2, 50e6, 20e6)),
    ("cable", preset(28, 0, 5e6, 1e6)),
];

impl Network {
    pub fn figures(&self) -> Figures {
        match self {
            Network::Preset(name) => PRESETS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, f)| *f)
                .expect("presets are checked when read"),
            Network::Custom(s) => Figures {
                rtt: s.rtt.0,
                jitter: s.jitter.map(|d| d.0).unwrap_or_default(),
                down_bps: s.down.map(|b| b.0),
                up_bps: s.up.map(|b| b.0),
            },
        }
    }

    /// `4g (rtt 80ms, jitter 20ms, down 20Mbit/s, up 5Mbit/s)`: what the report says.
    pub fn describe(&self) -> String {
        let f = self.figures();
        let bw = |b: Option<f64>| b.map_or("unlimited".to_string(), format_bandwidth);
        let figures = format!(
            "rtt {}, jitter {}, down {}, up {}",
            Dur(f.rtt),
            Dur(f.jitter),
            bw(f.down_bps),
            bw(f.up_bps)
        );
        match self {
            Network::Preset(n) => format!("{n} ({figures})"),
            Network::Custom(_) => figures,
        }
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Network;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a network preset (3g, 4g, 5g, wifi, cable) or { rtt, jitter, down, up }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Network, E> {
                if PRESETS.iter().any(|(n, _)| *n == s) {
                    return Ok(Network::Preset(s.to_string()));
                }
                Err(E::custom(format!(
                    "unknown network `{s}`: the presets are 3g, 4g, 5g, wifi and cable, or write {{ rtt: 80ms, jitter: 20ms, down: 20Mbit/s, up: 5Mbit/s }}"
                )))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<Network, A::Error> {
                NetworkSpec::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(Network::Custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Network::Preset(n) => s.serialize_str(n),
            Network::Custom(spec) => spec.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Network, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn presets_and_custom_networks_read_to_their_figures() {
        let f = read("4g").unwrap().figures();
        assert_eq!(f.rtt, Duration::from_millis(80));
        assert_eq!(f.down_bps, Some(20e6));
        let f = read("{ rtt: 100ms, down: 1Mbit/s }").unwrap().figures();
        assert_eq!(
            (f.rtt, f.jitter, f.down_bps, f.up_bps),
            (Duration::from_millis(100), Duration::ZERO, Some(1e6), None)
        );
        assert_eq!(
            read("3g").unwrap().describe(),
            "3g (rtt 150ms, jitter 0s, down 1.6Mbit/s, up 768kbit/s)"
        );
    }

    #[test]
    fn unknown_presets_and_keys_are_refused() {
        assert!(read("6g").unwrap_err().contains("the presets are"));
        assert!(read("{ rtt: 100ms, latency: 5ms }")
            .unwrap_err()
            .contains("unknown field"));
        assert!(read("{ down: 1Mbit/s }").unwrap_err().contains("rtt"));
    }
}
