//! Heartbeat times: RFC 3339 timestamps and Unix times, without a date-time crate.

/// Seconds since the Unix epoch for a heartbeat value, or `None` when it is not a time this
/// parser knows. Accepted:
/// - RFC 3339, `2021-01-12T11:39:14.3991Z`, `2021-01-12T12:39:14+01:00` (also with a space
///   for `T`, lowercase `t`/`z`, and `+0100` offsets);
/// - Go's `time.Time` text, `2021-01-12 11:39:14.3991 +0000 UTC` (a zone name after the offset
///   is ignored);
/// - Unix seconds (`1610451554`, `1610451554.399`), and Unix milliseconds (13 digits and up).
pub fn parse_heartbeat(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_unix(text);
    }
    parse_rfc3339(text)
}

/// Milliseconds since the epoch pass ten digits of seconds (year 2286) long before they
/// could be mistaken for seconds, so 13 or more integer digits mean milliseconds.
fn parse_unix(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 18 || fraction.contains('.') {
        return None;
    }
    let value: i64 = whole.parse().ok()?;
    Some(if whole.len() >= 13 {
        value / 1000
    } else {
        value
    })
}

/// Seconds since the Unix epoch for an RFC 3339 date-time (fractions truncated).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut cursor = Cursor { bytes, at: 0 };
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    match cursor.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = cursor.digits(2)?;
    cursor.expect(b':')?;
    let minute = cursor.digits(2)?;
    cursor.expect(b':')?;
    // 60 is a leap second; it is counted as the next second's start.
    let second = cursor.digits(2)?;
    if cursor.peek() == Some(b'.') {
        cursor.at += 1;
        let start = cursor.at;
        while cursor.peek().is_some_and(|b| b.is_ascii_digit()) {
            cursor.at += 1;
        }
        if cursor.at == start {
            return None;
        }
    }
    if cursor.peek() == Some(b' ') {
        cursor.at += 1;
    }
    let offset_seconds = match cursor.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = cursor.digits(2)?;
            if cursor.peek() == Some(b':') {
                cursor.at += 1;
            }
            let minutes = cursor.digits(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let rest = bytes.get(cursor.at..)?;
    let zone_name_only = match rest.split_first() {
        None => true,
        Some((b' ', name)) => !name.is_empty() && name.iter().all(u8::is_ascii_alphabetic),
        Some(_) => false,
    };
    if !zone_name_only
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn digits(&mut self, count: usize) -> Option<i64> {
        let mut value = 0i64;
        for _ in 0..count {
            let byte = self.next()?;
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
        }
        Some(value)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date: count whole 400-year eras from
/// 0000-03-01 so that the leap day falls at the end of each counted year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2021-01-12T11:39:14.3991Z"),
            Some(1_610_451_554)
        );
        assert_eq!(
            parse_rfc3339("2021-01-12T12:39:14+01:00"),
            Some(1_610_451_554)
        );
        assert_eq!(
            parse_rfc3339("2021-01-12t06:39:14.5-05:00"),
            Some(1_610_451_554)
        );
        assert_eq!(
            parse_rfc3339("2021-01-12 11:39:14.3991 +0000 UTC"),
            Some(1_610_451_554)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "",
            "2021-01-12",
            "2021-01-12T11:39:14",
            "2021-13-12T11:39:14Z",
            "2021-02-29T11:39:14Z",
            "2021-01-12T24:00:00Z",
            "2021-01-12T11:39:14.Z",
            "2021-01-12T11:39:14Zjunk",
            "2021-01-12T11:39:14+25:00",
            "２０２１-01-12T11:39:14Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn unix_forms() {
        assert_eq!(parse_heartbeat("1610451554"), Some(1_610_451_554));
        assert_eq!(parse_heartbeat(" 1610451554.399\n"), Some(1_610_451_554));
        assert_eq!(parse_heartbeat("1610451554399"), Some(1_610_451_554));
        assert_eq!(parse_heartbeat("99999999999999999999"), None);
        assert_eq!(parse_heartbeat("1.2.3"), None);
        assert_eq!(parse_heartbeat("."), None);
        assert_eq!(parse_heartbeat("yesterday"), None);
    }
}
