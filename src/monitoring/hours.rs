//! An organization's working hours: per ISO weekday an opening and closing time of day (local
//! to the organization's time zone), or closed. Parsed from the API's and the table's
//! `{"mon": ["08:00", "18:00"], …}`; a missing day is closed. A closing time earlier than the
//! opening time is refused (a night shift is two days' entries, or the user's own usual hours).

use std::collections::BTreeMap;

/// Day keys, in ISO order (Monday = 1).
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Opening intervals in minutes after local midnight, `[open, close)`, per ISO weekday − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    days: [Option<(u16, u16)>; 7],
}

/// Why a working-hours document was refused: the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HoursError {
    pub field: String,
    pub message: &'static str,
}

impl WorkingHours {
    /// Parses `{"mon": ["08:00", "18:00"], …}` (unknown keys refused).
    pub fn parse(days: &BTreeMap<String, Vec<String>>) -> Result<Self, HoursError> {
        let mut out = [None; 7];
        for (key, span) in days {
            let Some(i) = DAYS.iter().position(|d| d == key) else {
                return Err(HoursError { field: format!("days.{key}"), message: "must be one of mon … sun" });
            };
            let err = |message| HoursError { field: format!("days.{key}"), message };
            let [open, close] = span.as_slice() else { return Err(err("must be [\"HH:MM\", \"HH:MM\"]")) };
            let open = minutes(open).ok_or_else(|| err("times must be HH:MM (00:00 to 24:00)"))?;
            let close = minutes(close).ok_or_else(|| err("times must be HH:MM (00:00 to 24:00)"))?;
            if close <= open {
                return Err(err("closing time must be after opening time"));
            }
            out[i] = Some((open, close));
        }
        Ok(Self { days: out })
    }

    /// Parses the stored JSON (written by [`WorkingHours::to_json`]).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        serde_json::from_value::<BTreeMap<String, Vec<String>>>(v.clone()).ok().and_then(|m| Self::parse(&m).ok())
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (i, d) in self.days.iter().enumerate() {
            if let Some((o, c)) = d {
                m.insert(DAYS[i].into(), serde_json::json!([hhmm(*o), hhmm(*c)]));
            }
        }
        serde_json::Value::Object(m)
    }

    /// Whether `minute` (after local midnight) of ISO weekday `dow` (1 = Monday) is within hours.
    pub fn is_open(&self, dow: u8, minute: u16) -> bool {
        let Some(Some((open, close))) = self.days.get(usize::from(dow.saturating_sub(1))) else { return false };
        (*open..*close).contains(&minute)
    }
}

fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(d, o, c)| (d.to_string(), vec![o.to_string(), c.to_string()])).collect()
    }

    #[test]
    fn open_and_closed_minutes() {
        let h = WorkingHours::parse(&doc(&[("mon", "08:00", "18:00"), ("sat", "09:30", "12:00")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(h.is_open(1, 8 * 60));
        assert!(h.is_open(1, 18 * 60 - 1));
        assert!(!h.is_open(1, 18 * 60));
        assert!(!h.is_open(1, 7 * 60 + 59));
        assert!(!h.is_open(2, 12 * 60), "a missing day is closed");
        assert!(h.is_open(6, 10 * 60));
        assert!(!h.is_open(7, 10 * 60));
        assert_eq!(WorkingHours::from_json(&h.to_json()), Some(h));
    }

    #[test]
    fn refuses_bad_documents_naming_the_day() {
        for (d, o, c) in
            [("mon", "8:00", "18:00"), ("mon", "18:00", "08:00"), ("xyz", "08:00", "18:00"), ("tue", "24:30", "25:00")]
        {
            let e = WorkingHours::parse(&doc(&[(d, o, c)])).err();
            assert_eq!(e.map(|e| e.field), Some(format!("days.{d}")));
        }
        let mut bad = BTreeMap::new();
        bad.insert("wed".to_string(), vec!["08:00".to_string()]);
        assert!(WorkingHours::parse(&bad).is_err());
    }
}
