//! Reader of the UEA/UCR `.ts` time-series format (sktime's format).
//!
//! A file has `#` comment lines, `@tag value` header lines, then `@data` and one series per
//! line: channels separated by `:`, values by `,`, the class label last when `@classLabel
//! true` is declared. Supported: univariate and multivariate, equal and unequal length,
//! `?` for missing values (read as NaN), labelled and unlabelled files. Not supported:
//! `@timeStamps true` and regression targets (`@targetLabel`), both reported as
//! [`DataError::Unsupported`]. All channels of one series must have the same length.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::timeseries::{TimeSeriesDataset, TS_PAD_VALUE};

/// Header facts gathered before `@data`.
#[derive(Debug, Default)]
struct Header {
    problem_name: Option<String>,
    univariate: Option<bool>,
    dimensions: Option<usize>,
    equal_length: Option<bool>,
    series_length: Option<usize>,
    /// `Some(labels)` after `@classLabel true ...`, `None` if absent or false.
    class_labels: Option<Vec<String>>,
}

/// One parsed data line.
struct Series {
    /// Values per channel, all of equal length.
    channels: Vec<Vec<f32>>,
    label: Option<u32>,
}

/// Reads a `.ts` file (see the module docs).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Parse`] naming the file and
/// line for a bad header value, a bad number, a wrong channel count, channels of different
/// lengths, an unknown label, or a file without `@data` or series;
/// [`DataError::Unsupported`] for time stamps and regression targets.
pub fn read_ts(path: impl AsRef<Path>) -> Result<TimeSeriesDataset> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    parse_ts(&String::from_utf8_lossy(&bytes), path)
}

/// Parses the text of a `.ts` file; `path` is only used in error messages.
///
/// # Errors
/// As [`read_ts`], except I/O.
pub fn parse_ts(text: &str, path: &Path) -> Result<TimeSeriesDataset> {
    let err = |line: usize, reason: String| DataError::Parse {
        path: path.into(),
        line,
        reason,
    };
    let mut header = Header::default();
    let mut in_data = false;
    let mut n_channels: Option<usize> = None;
    let mut series = Vec::new();
    let mut last_line = 0;

    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        last_line = line_no;
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if in_data {
            let s = parse_series(line, &header, &mut n_channels).map_err(|r| err(line_no, r))?;
            series.push(s);
        } else if line.starts_with('@') {
            in_data = parse_header_line(line, &mut header, path).map_err(|e| match e {
                HeaderError::Bad(r) => err(line_no, r),
                HeaderError::Data(d) => d,
            })?;
            if in_data {
                n_channels = header_channels(&header).map_err(|r| err(line_no, r))?;
            }
        } else {
            return Err(err(
                line_no,
                "expected `@tag` header line or comment before `@data`".into(),
            ));
        }
    }

    if !in_data {
        return Err(err(last_line, "no `@data` line".into()));
    }
    if series.is_empty() {
        return Err(err(last_line, "no series after `@data`".into()));
    }
    Ok(assemble(series, header, n_channels.unwrap_or(1)))
}

enum HeaderError {
    Bad(String),
    Data(DataError),
}

/// Applies one header line; returns true for `@data`.
fn parse_header_line(line: &str, h: &mut Header, path: &Path) -> Result<bool, HeaderError> {
    let mut words = line.split_whitespace();
    let tag = words.next().unwrap_or("").to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let unsupported = |feature: &str| {
        HeaderError::Data(DataError::Unsupported {
            path: path.into(),
            feature: feature.into(),
        })
    };
    match tag.as_str() {
        "@problemname" => h.problem_name = Some(rest.join(" ")),
        "@timestamps" => {
            if parse_bool(&tag, &rest)? {
                return Err(unsupported("`@timeStamps true` (time-stamped series)"));
            }
        }
        "@missing" => {
            parse_bool(&tag, &rest)?;
        }
        "@univariate" => h.univariate = Some(parse_bool(&tag, &rest)?),
        "@dimensions" => h.dimensions = Some(parse_count(&tag, &rest)?),
        "@equallength" => h.equal_length = Some(parse_bool(&tag, &rest)?),
        "@serieslength" => h.series_length = Some(parse_count(&tag, &rest)?),
        "@classlabel" => h.class_labels = parse_class_labels(&rest)?,
        "@targetlabel" => {
            if parse_bool(&tag, &rest)? {
                return Err(unsupported("`@targetLabel true` (regression targets)"));
            }
        }
        "@data" => return Ok(true),
        _ => tracing::warn!(file = %path.display(), tag, "ignoring unknown .ts header tag"),
    }
    Ok(false)
}

fn parse_bool(tag: &str, rest: &[&str]) -> Result<bool, HeaderError> {
    match rest.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        other => Err(HeaderError::Bad(format!(
            "`{tag}` needs true or false, got {other:?}"
        ))),
    }
}

fn parse_count(tag: &str, rest: &[&str]) -> Result<usize, HeaderError> {
    match rest.first().and_then(|w| w.parse::<usize>().ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(HeaderError::Bad(format!(
            "`{tag}` needs a positive integer, got {rest:?}"
        ))),
    }
}

fn parse_class_labels(rest: &[&str]) -> Result<Option<Vec<String>>, HeaderError> {
    let labels: Vec<String> = rest.iter().skip(1).map(|s| s.to_string()).collect();
    if !parse_bool("@classLabel", rest)? {
        return Ok(None);
    }
    if labels.is_empty() {
        return Err(HeaderError::Bad("`@classLabel true` lists no label".into()));
    }
    if let Some(dup) = labels
        .iter()
        .enumerate()
        .find(|(i, l)| labels[..*i].contains(l))
    {
        return Err(HeaderError::Bad(format!(
            "class label `{}` is listed twice",
            dup.1
        )));
    }
    Ok(Some(labels))
}

/// Channel count fixed by the header, if any.
fn header_channels(h: &Header) -> Result<Option<usize>, String> {
    match (h.univariate, h.dimensions) {
        (Some(true), Some(d)) if d != 1 => {
            Err(format!("`@univariate true` contradicts `@dimensions {d}`"))
        }
        (Some(true), _) => Ok(Some(1)),
        (_, d) => Ok(d),
    }
}

/// Parses one data line; the first line fixes the channel count if the header did not.
fn parse_series(line: &str, h: &Header, n_channels: &mut Option<usize>) -> Result<Series, String> {
    let mut parts: Vec<&str> = line.split(':').collect();
    let label = match &h.class_labels {
        Some(labels) => {
            let word = parts.pop().unwrap_or("").trim();
            let pos = labels.iter().position(|l| l == word).ok_or_else(|| {
                format!(
                    "unknown class label `{word}` (declared: {})",
                    labels.join(" ")
                )
            })?;
            // Label lists are short; the position fits in u32.
            Some(pos as u32)
        }
        None => None,
    };
    if parts.is_empty() {
        return Err("no values before the class label".into());
    }
    let expected = *n_channels.get_or_insert(parts.len());
    if parts.len() != expected {
        return Err(format!("{} channels, expected {expected}", parts.len()));
    }

    let channels = parts
        .iter()
        .enumerate()
        .map(|(c, part)| parse_channel(part, c))
        .collect::<Result<Vec<_>, _>>()?;
    let len = channels.first().map_or(0, Vec::len);
    if let Some((c, ch)) = channels.iter().enumerate().find(|(_, ch)| ch.len() != len) {
        return Err(format!(
            "channel {c} has {} values but channel 0 has {len}",
            ch.len()
        ));
    }
    if let (Some(true), Some(want)) = (h.equal_length, h.series_length) {
        if len != want {
            return Err(format!(
                "series has {len} values per channel but @seriesLength is {want}"
            ));
        }
    }
    Ok(Series { channels, label })
}

fn parse_channel(part: &str, channel: usize) -> Result<Vec<f32>, String> {
    if part.trim().is_empty() {
        return Err(format!("channel {channel} is empty"));
    }
    part.split(',')
        .enumerate()
        .map(|(k, v)| match v.trim() {
            "?" => Ok(f32::NAN),
            v => v
                .parse::<f32>()
                .map_err(|_| format!("bad number `{v}` at position {k} of channel {channel}")),
        })
        .collect()
}

/// Pads the parsed series into the `[n, max_len, channels]` layout.
fn assemble(series: Vec<Series>, h: Header, ch: usize) -> TimeSeriesDataset {
    let lengths: Vec<usize> = series
        .iter()
        .map(|s| s.channels.first().map_or(0, Vec::len))
        .collect();
    let max_len = lengths.iter().copied().max().unwrap_or(0);
    let mut values = vec![TS_PAD_VALUE; series.len() * max_len * ch];
    for (s, dst) in series
        .iter()
        .zip(values.chunks_exact_mut((max_len * ch).max(1)))
    {
        for (c, channel) in s.channels.iter().enumerate() {
            for (t, &v) in channel.iter().enumerate() {
                dst[t * ch + c] = v;
            }
        }
    }
    let labels = h
        .class_labels
        .as_ref()
        .map(|_| series.iter().filter_map(|s| s.label).collect());
    TimeSeriesDataset {
        values,
        lengths,
        labels,
        class_names: h.class_labels.unwrap_or_default(),
        n_channels: ch,
        max_len,
        problem_name: h.problem_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TimeSeriesDataset> {
        parse_ts(text, Path::new("t.ts"))
    }

    const HEAD: &str = "@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n";

    fn line_of(e: DataError) -> (usize, String) {
        match e {
            DataError::Parse { line, reason, .. } => (line, reason),
            other => panic!("expected a parse error, got {other}"),
        }
    }

    #[test]
    fn errors_name_the_line() {
        let (line, reason) = line_of(parse(&format!("{HEAD}1,2:3,4:a\n1,x:3,4:b\n")).unwrap_err());
        assert_eq!(line, 6);
        assert!(reason.contains("bad number `x`"), "{reason}");
        let (line, reason) = line_of(parse(&format!("{HEAD}1,2:a\n")).unwrap_err());
        assert_eq!(line, 5);
        assert!(reason.contains("1 channels, expected 2"), "{reason}");
        let (_, reason) = line_of(parse(&format!("{HEAD}1,2:3,4:c\n")).unwrap_err());
        assert!(reason.contains("unknown class label `c`"), "{reason}");
        let (_, reason) = line_of(parse(&format!("{HEAD}1,2:3:a\n")).unwrap_err());
        assert!(reason.contains("channel 1 has 1 values"), "{reason}");
        let (_, reason) = line_of(parse(&format!("{HEAD}1,2:,:a\n")).unwrap_err());
        assert!(reason.contains("bad number"), "{reason}");
    }

    #[test]
    fn header_problems() {
        assert!(
            line_of(parse("@univariate maybe\n@data\n1:a\n").unwrap_err())
                .1
                .contains("true or false")
        );
        assert!(line_of(parse("@classLabel true a\n").unwrap_err())
            .1
            .contains("no `@data`"));
        assert!(line_of(parse("@classLabel true a\n@data\n").unwrap_err())
            .1
            .contains("no series"));
        assert!(line_of(parse("1,2\n").unwrap_err())
            .1
            .contains("before `@data`"));
        assert!(parse("@classLabel true a a\n@data\n1:a\n").is_err());
        assert!(parse("@univariate true\n@dimensions 3\n@data\n1\n").is_err());
        assert!(matches!(
            parse("@timeStamps true\n@data\n(1,2)\n").unwrap_err(),
            DataError::Unsupported { .. }
        ));
        assert!(matches!(
            parse("@targetLabel true\n@data\n1:2.5\n").unwrap_err(),
            DataError::Unsupported { .. }
        ));
        let err = parse("@equalLength true\n@seriesLength 3\n@classLabel false\n@data\n1,2\n");
        assert!(line_of(err.unwrap_err()).1.contains("@seriesLength is 3"));
    }

    #[test]
    fn infers_channels_without_header() {
        let ds = parse("@classLabel false\n@data\n1,2:3,4\n5:6\n").unwrap();
        assert_eq!((ds.n_channels, ds.max_len), (2, 2));
        assert_eq!(ds.lengths, vec![2, 1]);
        assert_eq!(ds.values, vec![1.0, 3.0, 2.0, 4.0, 5.0, 6.0, 0.0, 0.0]);
        assert_eq!(ds.labels, None);
    }
}
