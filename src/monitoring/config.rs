//! The detectors' thresholds, from `CUSTOS_MONITOR_*` variables (docs/privacy-monitoring.md
//! lists each with its default and what raising or lowering it does).

/// Every tunable threshold of the detectors and the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// `after_hours`: a user's own hours count as usual once they have this many accesses.
    pub after_hours_min_history: u64,
    /// `after_hours`: an hour of day is usual for a user when at least this share of their
    /// accesses fell within one hour of it.
    pub after_hours_usual_share: f64,
    /// `volume_spike`: the day's distinct patients must exceed this factor times the user's
    /// own baseline and their role's.
    pub volume_factor: f64,
    /// `volume_spike`: and exceed this many distinct patients in any case.
    pub volume_min_patients: usize,
    /// `volume_spike`: days of the user's own history before their baseline counts.
    pub volume_min_baseline_days: i32,
    /// `dormant`: days without any access before a return is flagged.
    pub dormant_days: i64,
    /// `after_disable`: accesses this many hours before a disable are flagged too.
    pub after_disable_before_hours: i64,
    /// `deceased`: after this many days past the date of death every access is flagged; before,
    /// only accesses no care relationship explains.
    pub deceased_grace_days: i64,
    /// Engine: ledger entries analyzed per transaction.
    pub batch_size: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            after_hours_min_history: 200,
            after_hours_usual_share: 0.01,
            volume_factor: 3.0,
            volume_min_patients: 40,
            volume_min_baseline_days: 5,
            dormant_days: 60,
            after_disable_before_hours: 24,
            deceased_grace_days: 30,
            batch_size: 20_000,
        }
    }
}

/// A variable that is set but does not parse (named, with the rule it breaks).
#[derive(Debug, thiserror::Error)]
#[error("{0}: {1}")]
pub struct ThresholdError(pub &'static str, pub &'static str);

impl Thresholds {
    /// Defaults overridden by whichever `CUSTOS_MONITOR_*` variables `get` knows.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ThresholdError> {
        let d = Self::default();
        Ok(Self {
            after_hours_min_history: num(&get, "CUSTOS_MONITOR_AFTER_HOURS_MIN_HISTORY", d.after_hours_min_history)?,
            after_hours_usual_share: share(&get, "CUSTOS_MONITOR_AFTER_HOURS_USUAL_SHARE", d.after_hours_usual_share)?,
            volume_factor: factor(&get, "CUSTOS_MONITOR_VOLUME_FACTOR", d.volume_factor)?,
            volume_min_patients: num(&get, "CUSTOS_MONITOR_VOLUME_MIN_PATIENTS", d.volume_min_patients)?,
            volume_min_baseline_days: num(&get, "CUSTOS_MONITOR_VOLUME_MIN_BASELINE_DAYS", d.volume_min_baseline_days)?,
            dormant_days: positive(&get, "CUSTOS_MONITOR_DORMANT_DAYS", d.dormant_days)?,
            after_disable_before_hours: num(
                &get,
                "CUSTOS_MONITOR_AFTER_DISABLE_BEFORE_HOURS",
                d.after_disable_before_hours,
            )?,
            deceased_grace_days: num(&get, "CUSTOS_MONITOR_DECEASED_GRACE_DAYS", d.deceased_grace_days)?,
            batch_size: positive(&get, "CUSTOS_MONITOR_BATCH_SIZE", d.batch_size)?,
        })
    }

    /// [`Thresholds::from_lookup`] over the process environment.
    pub fn from_env() -> Result<Self, ThresholdError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

fn num<T: std::str::FromStr + PartialOrd + Default>(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: T,
) -> Result<T, ThresholdError> {
    match get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .ok()
            .filter(|n| *n >= T::default())
            .ok_or(ThresholdError(key, "must be a non-negative whole number")),
    }
}

fn positive(get: &impl Fn(&str) -> Option<String>, key: &'static str, default: i64) -> Result<i64, ThresholdError> {
    let n = num(get, key, default)?;
    if n < 1 { Err(ThresholdError(key, "must be at least 1")) } else { Ok(n) }
}

fn float(get: &impl Fn(&str) -> Option<String>, key: &'static str) -> Option<Option<f64>> {
    get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(|v| v.parse::<f64>().ok())
}

fn share(get: &impl Fn(&str) -> Option<String>, key: &'static str, default: f64) -> Result<f64, ThresholdError> {
    match float(get, key) {
        None => Ok(default),
        Some(Some(v)) if (0.0..=1.0).contains(&v) => Ok(v),
        Some(_) => Err(ThresholdError(key, "must be a number between 0 and 1")),
    }
}

fn factor(get: &impl Fn(&str) -> Option<String>, key: &'static str, default: f64) -> Result<f64, ThresholdError> {
    match float(get, key) {
        None => Ok(default),
        Some(Some(v)) if v.is_finite() && v >= 1.0 => Ok(v),
        Some(_) => Err(ThresholdError(key, "must be a number of at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let t = Thresholds::from_lookup(|_| None).unwrap_or_default();
        assert_eq!(t, Thresholds::default());
        let t = Thresholds::from_lookup(|k| match k {
            "CUSTOS_MONITOR_DORMANT_DAYS" => Some("90".into()),
            "CUSTOS_MONITOR_VOLUME_FACTOR" => Some("2.5".into()),
            _ => None,
        });
        let t = t.ok();
        assert_eq!(t.as_ref().map(|t| t.dormant_days), Some(90));
        assert_eq!(t.as_ref().map(|t| t.volume_factor), Some(2.5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("CUSTOS_MONITOR_DORMANT_DAYS", "0"),
            ("CUSTOS_MONITOR_DORMANT_DAYS", "-3"),
            ("CUSTOS_MONITOR_AFTER_HOURS_USUAL_SHARE", "1.5"),
            ("CUSTOS_MONITOR_VOLUME_FACTOR", "0.5"),
            ("CUSTOS_MONITOR_BATCH_SIZE", "lots"),
        ] {
            let e = Thresholds::from_lookup(|key| (key == k).then(|| v.to_owned())).err();
            assert_eq!(e.map(|e| e.0), Some(k), "{k}={v}");
        }
    }
}
