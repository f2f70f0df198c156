//! Compressed chunks: the samples of one series over one closed hour, packed into a few bytes
//! each (stored in `metric_chunks`). Timestamps are delta-of-delta coded in the coarsest unit that
//! holds them exactly (second, millisecond or microsecond); values are XOR coded as in Gorilla
//! (Pelkonen et al., VLDB 2015), or, when every value is a decimal with at most 6 places that
//! fits a float exactly (percentages, byte counts, counters), as integers coded by delta or by
//! delta-of-delta: each chunk takes whichever is smallest. Lossless: decoding gives back every
//! timestamp and every value bit for bit. Pure: no I/O.

/// One sample: microseconds since the Unix epoch, and its value.
pub type Sample = (i64, f64);

const TS_UNITS: [i64; 3] = [1, 1_000, 1_000_000];
const MODE_XOR: u8 = 0;
const MODE_DELTA: u8 = 1;
const MODE_DOD: u8 = 2;
const MAX_PLACES: u32 = 6;

/// Packs samples (sorted by time, no time twice; the caller's invariant) into a chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let unit_code = (0..TS_UNITS.len())
        .rev()
        .find(|&u| samples.iter().all(|s| s.0 % TS_UNITS[u] == 0))
        .unwrap_or(0);
    let unit = TS_UNITS[unit_code];
    let mut best: Option<Vec<u8>> = None;
    let scaled = decimal_places(samples);
    let modes: &[u8] = match scaled {
        Some(_) => &[MODE_XOR, MODE_DELTA, MODE_DOD],
        None => &[MODE_XOR],
    };
    for &mode in modes {
        let places = scaled.unwrap_or(0);
        let mut out = vec![unit_code as u8 | (mode << 2) | ((places as u8) << 4)];
        put_varint(&mut out, samples.len() as u64);
        let mut bits = BitWriter::default();
        write_times(&mut bits, samples.iter().map(|s| s.0 / unit));
        match mode {
            MODE_XOR => write_xor(&mut bits, samples.iter().map(|s| s.1)),
            _ => {
                let ints = samples.iter().map(|s| to_int(s.1, places));
                write_ints(&mut bits, ints, mode == MODE_DOD)
            }
        }
        out.extend(bits.finish());
        if best.as_ref().is_none_or(|b| out.len() < b.len()) {
            best = Some(out);
        }
    }
    best.unwrap_or_default()
}

/// Unpacks a chunk; a truncated or malformed one is an error, never a panic.
pub fn decode(data: &[u8]) -> Result<Vec<Sample>, String> {
    let bad = |what: &str| format!("metric chunk: {what}");
    let (&head, rest) = data.split_first().ok_or_else(|| bad("empty"))?;
    let (unit_code, mode, places) = ((head & 3) as usize, (head >> 2) & 3, u32::from(head >> 4));
    let unit = *TS_UNITS
        .get(unit_code)
        .ok_or_else(|| bad("unknown time unit"))?;
    if mode > MODE_DOD || places > MAX_PLACES {
        return Err(bad("unknown value coding"));
    }
    let (n, used) = get_varint(rest).ok_or_else(|| bad("bad count"))?;
    // Each sample takes at least two bits: a larger count is a corrupt header.
    if n > (rest.len() as u64 - used as u64) * 4 + 1 {
        return Err(bad("count larger than its data"));
    }
    let n = n as usize;
    let mut bits = BitReader::new(&rest[used..]);
    let times = read_times(&mut bits, n).ok_or_else(|| bad("truncated timestamps"))?;
    let values = match mode {
        MODE_XOR => read_xor(&mut bits, n),
        _ => read_ints(&mut bits, n, mode == MODE_DOD)
            .map(|v| v.into_iter().map(|i| from_int(i, places)).collect()),
    }
    .ok_or_else(|| bad("truncated values"))?;
    times
        .into_iter()
        .zip(values)
        .map(|(t, v)| {
            t.checked_mul(unit)
                .map(|t| (t, v))
                .ok_or_else(|| bad("timestamp out of range"))
        })
        .collect()
}

/// Merges stored samples with newer rows: by time, the stored value kept where both have one
/// (a re-sent sample changes nothing, as `ON CONFLICT DO NOTHING` does for rows).
pub fn merge(stored: Vec<Sample>, rows: Vec<Sample>) -> Vec<Sample> {
    let mut all = stored;
    all.extend(rows);
    // Stable: of two samples at one time, the stored one stays first.
    all.sort_by_key(|s| s.0);
    all.dedup_by_key(|s| s.0);
    all
}

/// The fewest decimal places (up to 6) with which every value is an integer, scaled back to
/// itself bit for bit; none when some value is not.
fn decimal_places(samples: &[Sample]) -> Option<u32> {
    (0..=MAX_PLACES).find(|&p| {
        samples.iter().all(|s| {
            let scaled = s.1 * 10f64.powi(p as i32);
            scaled.abs() < 9.0e15 && from_int(scaled.round() as i64, p).to_bits() == s.1.to_bits()
        })
    })
}

fn to_int(v: f64, places: u32) -> i64 {
    (v * 10f64.powi(places as i32)).round() as i64
}

fn from_int(i: i64, places: u32) -> f64 {
    i as f64 / 10f64.powi(places as i32)
}

// Timestamps: the first as 64 bits, then the deltas' changes in buckets.
fn write_times(bits: &mut BitWriter, times: impl Iterator<Item = i64>) {
    let (mut prev, mut delta) = (0i64, 0i64);
    for (i, t) in times.enumerate() {
        if i == 0 {
            bits.push(t as u64, 64);
        } else {
            let d = t.wrapping_sub(prev);
            put_bucketed(bits, d.wrapping_sub(delta));
            delta = d;
        }
        prev = t;
    }
}

fn read_times(bits: &mut BitReader, n: usize) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(n);
    let (mut prev, mut delta) = (0i64, 0i64);
    for i in 0..n {
        let t = if i == 0 {
            bits.take(64)? as i64
        } else {
            delta = delta.wrapping_add(get_bucketed(bits)?);
            prev.wrapping_add(delta)
        };
        out.push(t);
        prev = t;
    }
    Some(out)
}

// Integers: the first as 64 bits, then each delta (or the deltas' changes) in buckets.
fn write_ints(bits: &mut BitWriter, ints: impl Iterator<Item = i64>, dod: bool) {
    let (mut prev, mut delta) = (0i64, 0i64);
    for (i, v) in ints.enumerate() {
        if i == 0 {
            bits.push(v as u64, 64);
        } else {
            let d = v.wrapping_sub(prev);
            put_bucketed(bits, if dod { d.wrapping_sub(delta) } else { d });
            delta = d;
        }
        prev = v;
    }
}

fn read_ints(bits: &mut BitReader, n: usize, dod: bool) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(n);
    let (mut prev, mut delta) = (0i64, 0i64);
    for i in 0..n {
        let v = if i == 0 {
            bits.take(64)? as i64
        } else {
            let x = get_bucketed(bits)?;
            delta = if dod { delta.wrapping_add(x) } else { x };
            prev.wrapping_add(delta)
        };
        out.push(v);
        prev = v;
    }
    Some(out)
}

/// A signed number in a prefix-coded bucket: `0` for zero, then 4, 8, 12, 20, 32 or 64 bits
/// (millisecond jitter and the small steps of a gauge take the short ones).
const BUCKETS: [(u64, u32, u32); 6] = [
    (0b10, 2, 4),
    (0b110, 3, 8),
    (0b1110, 4, 12),
    (0b11110, 5, 20),
    (0b111110, 6, 32),
    (0b111111, 6, 64),
];

fn put_bucketed(bits: &mut BitWriter, x: i64) {
    if x == 0 {
        bits.push(0, 1);
        return;
    }
    for (prefix, plen, width) in BUCKETS {
        let fits = width == 64 || (-(1i64 << (width - 1))..(1i64 << (width - 1))).contains(&x);
        if fits {
            bits.push(prefix, plen);
            bits.push(x as u64 & mask(width), width);
            return;
        }
    }
}

fn get_bucketed(bits: &mut BitReader) -> Option<i64> {
    let mut ones = 0;
    // Up to five ones and a zero, or six ones (the widest).
    while ones < BUCKETS.len() && bits.take(1)? == 1 {
        ones += 1;
    }
    if ones == 0 {
        return Some(0);
    }
    let width = BUCKETS[ones - 1].2;
    let raw = bits.take(width)?;
    // Sign-extend from `width` bits.
    let shift = 64 - width;
    Some(((raw << shift) as i64) >> shift)
}

fn mask(width: u32) -> u64 {
    if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

// Values as in Gorilla: `0` same as before; `10` the XOR's meaningful bits within the last
// window; `11`, 5 bits of leading zeros, 6 of length, then the bits.
fn write_xor(bits: &mut BitWriter, values: impl Iterator<Item = f64>) {
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None;
    for (i, v) in values.enumerate() {
        let v = v.to_bits();
        if i == 0 {
            bits.push(v, 64);
            prev = v;
            continue;
        }
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            bits.push(0, 1);
            continue;
        }
        let (lead, trail) = (x.leading_zeros().min(31), x.trailing_zeros());
        match window {
            Some((l, t)) if lead >= l && trail >= t => {
                bits.push(0b10, 2);
                bits.push(x >> t, 64 - l - t);
            }
            _ => {
                let len = 64 - lead - trail;
                bits.push(0b11, 2);
                bits.push(u64::from(lead), 5);
                bits.push(u64::from(len - 1), 6);
                bits.push(x >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
}

fn read_xor(bits: &mut BitReader, n: usize) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None;
    for i in 0..n {
        if i == 0 {
            prev = bits.take(64)?;
        } else if bits.take(1)? == 1 {
            let (l, t) = if bits.take(1)? == 0 {
                window?
            } else {
                let lead = bits.take(5)? as u32;
                let len = bits.take(6)? as u32 + 1;
                if lead + len > 64 {
                    return None;
                }
                let w = (lead, 64 - lead - len);
                window = Some(w);
                w
            };
            prev ^= bits.take(64 - l - t)? << t;
        }
        out.push(f64::from_bits(prev));
    }
    Some(out)
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    used: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `value` (n ≤ 64), most significant first.
    fn push(&mut self, value: u64, n: u32) {
        let mut n = n;
        while n > 0 {
            let take = n.min(8);
            let part = (value >> (n - take)) & mask(take);
            self.acc = (self.acc << take) | part;
            self.used += take;
            n -= take;
            while self.used >= 8 {
                self.out.push((self.acc >> (self.used - 8)) as u8);
                self.used -= 8;
            }
            self.acc &= mask(self.used);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push((self.acc << (8 - self.used)) as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next `n` bits (n ≤ 64), or none past the end.
    fn take(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_764_547_200_000_000; // 2025-12-01 00:00:00 UTC in µs

    #[test]
    fn round_trips_and_sizes() {
        let every5s = |n: i64| (0..n).map(|i| T0 + i * 5_000_000);
        let jitter = |n: i64| (0..n).map(|i| T0 + i * 5_000_000 + (i * 7919) % 3_000);
        // (what, samples, at most this many bytes a sample)
        let cases: Vec<(&str, Vec<Sample>, f64)> = vec![
            ("empty", vec![], 0.0),
            ("one", vec![(T0, 42.5)], 20.0),
            ("constant", every5s(720).map(|t| (t, 1.0)).collect(), 0.3),
            (
                "percent, 2 places",
                every5s(720)
                    .zip(0..)
                    .map(|(t, i)| (t, ((i * 37) % 10_000) as f64 / 100.0))
                    .collect(),
                3.0,
            ),
            (
                "bytes in pages",
                every5s(720)
                    .zip(0..)
                    .map(|(t, i)| (t, 8.0e9 + ((i * 13) % 50) as f64 * 4096.0))
                    .collect(),
                3.0,
            ),
            (
                "counter",
                every5s(720)
                    .zip(0..)
                    .map(|(t, i)| (t, (i * 125_000 + i % 7) as f64))
                    .collect(),
                3.0,
            ),
            ("µs jitter", jitter(720).map(|t| (t, 0.0)).collect(), 3.0),
            (
                "noisy floats",
                every5s(720)
                    .zip(0..)
                    .map(|(t, i)| (t, (i as f64).sin() * 1e3))
                    .collect(),
                10.0,
            ),
        ];
        for (what, samples, per) in cases {
            let data = encode(&samples);
            assert_eq!(decode(&data).unwrap(), samples, "{what}");
            let bits_per: Vec<u64> = decode(&data)
                .unwrap()
                .iter()
                .map(|s| s.1.to_bits())
                .collect();
            assert_eq!(
                bits_per,
                samples.iter().map(|s| s.1.to_bits()).collect::<Vec<_>>(),
                "{what}"
            );
            if !samples.is_empty() {
                let size = data.len() as f64 / samples.len() as f64;
                assert!(size <= per, "{what}: {size:.2} bytes a sample");
            }
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        let good = encode(&[(T0, 1.5), (T0 + 5_000_000, 2.5), (T0 + 10_000_000, -7.25)]);
        for (what, data) in [
            ("empty", vec![]),
            ("unknown unit", vec![3, 1]),
            ("unknown coding", vec![0b1100, 1]),
            ("count without data", vec![0, 200, 1]),
            ("truncated", good[..good.len() - 3].to_vec()),
        ] {
            assert!(decode(&data).is_err(), "{what}");
        }
        // Every prefix of a good chunk is an error or a shorter answer, never a panic.
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
    }

    #[test]
    fn merge_keeps_the_stored_value() {
        let stored = vec![(1, 1.0), (3, 3.0)];
        let rows = vec![(2, 2.0), (3, 9.0), (4, 4.0)];
        assert_eq!(
            merge(stored, rows),
            vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
    }

    fn series() -> impl Strategy<Value = Vec<Sample>> {
        let value = prop_oneof![
            any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
            (0u64..u64::MAX).prop_map(|b| f64::from_bits(b & !(0x7ff << 52) | (0x3ff << 52))),
            Just(0.0),
            Just(-0.0),
        ];
        // Gaps of any size (within an hour and beyond), jitter in µs, ms or whole seconds.
        let step = prop_oneof![
            (1i64..4_000_000_000),
            (1i64..20).prop_map(|s| s * 5_000_000),
            (1i64..10_000).prop_map(|ms| ms * 1_000),
        ];
        proptest::collection::vec((step, value), 0..400).prop_map(|v| {
            let mut t = T0;
            v.into_iter()
                .map(|(d, x)| {
                    t += d;
                    (t, x)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn any_series_round_trips(samples in series()) {
            let back = decode(&encode(&samples)).unwrap();
            prop_assert_eq!(back.len(), samples.len());
            for (a, b) in back.iter().zip(&samples) {
                prop_assert_eq!(a.0, b.0);
                prop_assert_eq!(a.1.to_bits(), b.1.to_bits());
            }
        }

        #[test]
        fn merged_chunks_round_trip(a in series(), b in series()) {
            let merged = merge(a.clone(), b);
            let back = decode(&encode(&merged)).unwrap();
            prop_assert_eq!(back.len(), merged.len());
            prop_assert!(merged.windows(2).all(|w| w[0].0 < w[1].0));
            for s in &a {
                prop_assert!(merged.iter().any(|m| m.0 == s.0 && m.1.to_bits() == s.1.to_bits()));
            }
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data);
        }
    }
}
