//! The rows one batch writes, column by column (what `UNNEST` takes), for every target
//! table. A document's rows are built on their own and appended to the batch, so a batch
//! that the database refuses can be retried document by document.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

macro_rules! columns {
    ($(#[$m:meta])* $name:ident { $first:ident : $fty:ty $(, $field:ident : $ty:ty)* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name {
            pub $first: Vec<$fty>,
            $(pub $field: Vec<$ty>,)*
        }
        impl $name {
            pub fn is_empty(&self) -> bool {
                self.$first.is_empty()
            }
            pub fn append(&mut self, other: &mut Self) {
                self.$first.append(&mut other.$first);
                $(self.$field.append(&mut other.$field);)*
            }
        }
        impl Table for $name {
            fn push_row(&mut self, row: &PgRow) -> Result<(), sqlx::Error> {
                self.$first.push(row.try_get(stringify!($first))?);
                $(self.$field.push(row.try_get(stringify!($field))?);)*
                Ok(())
            }
            fn ids(&self) -> &[Uuid] {
                &self.$first
            }
            fn open_sealed(&mut self, table: &'static str, open: &mut Opener<'_>) {
                $(if stringify!($field).ends_with("_enc") {
                    for i in 0..self.$first.len() {
                        let id = self.$first[i];
                        self.$field[i].open_with(&mut |b| open(table, stringify!($field), id, b));
                    }
                })*
            }
        }
        impl $name {
            /// Compares the rows the source yields (`self`) with the database's (`have`) cell
            /// by cell, row `i` with row `i`; calls `differ(table[i].column, problem)` for each
            /// difference. Returns the number of source cells compared. (Not used for the
            /// care-team and id-map rows, which verify does not compare.)
            #[allow(dead_code)]
            pub fn compare_with(
                &self,
                have: &Self,
                table: &str,
                own: &Own,
                theirs: &Own,
                differ: &mut dyn FnMut(String, &'static str),
            ) -> u64 {
                let mut columns = 0u64;
                $(
                    columns += 1;
                    for i in 0..self.$field.len().max(have.$field.len()) {
                        let problem = match (self.$field.get(i), have.$field.get(i)) {
                            (Some(a), Some(b)) if a.same(b, own, theirs) => continue,
                            (Some(_), Some(_)) => "differs",
                            (Some(_), None) => "missing in the database",
                            (None, _) => "in the database, not in the source",
                        };
                        differ(format!("{table}[{i}].{}", stringify!($field)), problem);
                    }
                )*
                columns * self.$first.len() as u64
            }
        }
    };
}

/// Opens a sealed value: `(table, column, row id, sealed) → plaintext`.
pub type Opener<'a> = dyn FnMut(&str, &str, Uuid, &[u8]) -> Vec<u8> + 'a;

/// A table's columns, generically: what `custos import verify` needs to read rows back from
/// the database into the same shape the import builds, open sealed columns and compare.
pub trait Table {
    /// Appends one database row (columns named like the fields).
    fn push_row(&mut self, row: &PgRow) -> Result<(), sqlx::Error>;
    /// The first column: the row ids.
    fn ids(&self) -> &[Uuid];
    /// Replaces every `*_enc` value by its plaintext.
    fn open_sealed(&mut self, table: &'static str, open: &mut Opener<'_>);
}

/// The rows of one document, by id: `(table, position)`. A document's own rows get new ids
/// on each side, so they compare by position; references to other documents by id.
pub type Own = HashMap<Uuid, (usize, usize)>;

/// One cell, compared with the database's (never printed: it may be PHI).
pub trait Cell {
    /// Equal values; ids of the document's own rows ([`Own`]) compare by position.
    fn same(&self, other: &Self, own: &Own, theirs: &Own) -> bool;
    fn open_with(&mut self, _open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {}
}

impl Cell for Uuid {
    fn same(&self, other: &Self, own: &Own, theirs: &Own) -> bool {
        match (own.get(self), theirs.get(other)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self == other,
            _ => false,
        }
    }
}

impl Cell for Vec<u8> {
    fn same(&self, other: &Self, _: &Own, _: &Own) -> bool {
        self == other
    }
    fn open_with(&mut self, open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {
        *self = open(self);
    }
}

impl<T: Cell> Cell for Option<T> {
    fn same(&self, other: &Self, own: &Own, theirs: &Own) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same(b, own, theirs),
            (None, None) => true,
            _ => false,
        }
    }
    fn open_with(&mut self, open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {
        if let Some(v) = self {
            v.open_with(open);
        }
    }
}

/// Floats are equal when their bits are (so -0.0 is not 0.0: stored as given), any NaN
/// equal to any NaN.
impl Cell for f64 {
    fn same(&self, other: &Self, _: &Own, _: &Own) -> bool {
        self.to_bits() == other.to_bits() || (self.is_nan() && other.is_nan())
    }
}

macro_rules! plain_cells {
    ($($t:ty),*) => {
        $(impl Cell for $t {
            fn same(&self, other: &Self, _: &Own, _: &Own) -> bool {
                self == other
            }
        })*
    };
}
plain_cells!(String, i16, i32, i64, NaiveDate, DateTime<Utc>);

type Bytes = Vec<u8>;
type Time = DateTime<Utc>;

columns!(UserCols {
    id: Uuid, role: String, email_enc: Bytes, email_bidx: Bytes, display_name_enc: Option<Bytes>,
    password_hash: String, status: String, created_at: Time,
});
columns!(PatientCols {
    id: Uuid, user_id: Uuid, mrn_enc: Bytes, mrn_bidx: Bytes, given_name_enc: Bytes, family_name_enc: Bytes,
    birth_date_enc: Bytes, sex: String, ssn_enc: Option<Bytes>, phone_enc: Option<Bytes>,
    address_enc: Option<Bytes>, created_at: Time, email_enc: Bytes, email_bidx: Bytes,
});
columns!(MedicalInfoCols {
    id: Uuid, patient_id: Uuid, blood_type: String, height_cm: Option<f64>, weight_kg: Option<f64>,
    emergency_contact_enc: Option<Bytes>,
});
columns!(AllergyCols {
    id: Uuid, patient_id: Uuid, substance: String, reaction_enc: Option<Bytes>, severity: String,
    status: String, created_at: Time,
});
columns!(MedicationCols {
    id: Uuid, patient_id: Uuid, name: String, dose: f64, unit: String, route: String, frequency: String,
    start_date: NaiveDate, end_date: Option<NaiveDate>, status: String, notes_enc: Option<Bytes>, created_at: Time,
});
columns!(HistoryCols {
    id: Uuid, patient_id: Uuid, icd10_code: String, description: Option<String>, diagnosed_on: NaiveDate,
    resolved_on: Option<NaiveDate>, notes_enc: Option<Bytes>, created_at: Time,
});
columns!(ConversationCols {
    id: Uuid, patient_id: Uuid, subject_enc: Bytes, status: String, assigned_clinician_id: Option<Uuid>,
    opened_by: Option<Uuid>, closed_at: Option<Time>, created_at: Time, updated_at: Time,
});
columns!(CareTeamCols { patient_id: Uuid, clinician_id: Uuid });
columns!(MessageCols {
    id: Uuid,
    conversation_id: Uuid,
    patient_id: Uuid,
    sender_id: Uuid,
    body_enc: Bytes,
    created_at: Time,
});
columns!(SymptomCols {
    id: Uuid, conversation_id: Uuid, patient_id: Uuid, name: String, severity: i16, onset: Option<NaiveDate>,
    created_at: Time,
});
columns!(AttachmentCols {
    id: Uuid, patient_id: Uuid, conversation_id: Uuid, uploaded_by: Option<Uuid>, filename_enc: Bytes,
    content_type: String, size_bytes: i64, sha256: Bytes, content_enc: Bytes, created_at: Time,
});
columns!(PrescriptionCols {
    id: Uuid, patient_id: Uuid, prescriber_id: Uuid, medication: String, dose: String, quantity: i32,
    refills_allowed: i16, refills_used: i16, instructions_enc: Option<Bytes>, issued_at: Time, expires_at: Time,
    status: String, cancelled_at: Option<Time>, cancel_reason_enc: Option<Bytes>, created_at: Time,
});
columns!(
    /// Imported activity-log events for `audit_inbox` (flagged `imported`).
    AuditCols {
        event_id: Uuid, occurred_at: Time, actor_id: Uuid, actor_role: String, action: String,
        resource_type: String, resource_id: Option<String>, patient_id: Option<Uuid>, outcome: String,
        client_ip: Option<String>, user_agent: Option<String>, reason: String,
    }
);
columns!(MapCols { new_id: Uuid, collection: String, legacy_id: String });

/// Every table a batch can write, in foreign-key order.
#[derive(Debug, Default)]
pub struct Rows {
    pub users: UserCols,
    pub patients: PatientCols,
    pub medical_info: MedicalInfoCols,
    pub allergies: AllergyCols,
    pub medications: MedicationCols,
    pub history: HistoryCols,
    pub conversations: ConversationCols,
    pub care_team: CareTeamCols,
    pub messages: MessageCols,
    pub symptoms: SymptomCols,
    pub attachments: AttachmentCols,
    pub prescriptions: PrescriptionCols,
    pub audit: AuditCols,
    pub map: MapCols,
}

impl Rows {
    pub fn append(&mut self, o: &mut Rows) {
        self.users.append(&mut o.users);
        self.patients.append(&mut o.patients);
        self.medical_info.append(&mut o.medical_info);
        self.allergies.append(&mut o.allergies);
        self.medications.append(&mut o.medications);
        self.history.append(&mut o.history);
        self.conversations.append(&mut o.conversations);
        self.care_team.append(&mut o.care_team);
        self.messages.append(&mut o.messages);
        self.symptoms.append(&mut o.symptoms);
        self.attachments.append(&mut o.attachments);
        self.prescriptions.append(&mut o.prescriptions);
        self.audit.append(&mut o.audit);
        self.map.append(&mut o.map);
    }

    /// The tables `custos import verify` compares, by name (care-team rows are shared
    /// between documents and checked by the import's orphan check instead).
    pub fn tables(&self) -> [(&'static str, &dyn Table); 12] {
        [
            ("users", &self.users),
            ("patients", &self.patients),
            ("patient_medical_info", &self.medical_info),
            ("allergies", &self.allergies),
            ("medications", &self.medications),
            ("medical_history", &self.history),
            ("conversations", &self.conversations),
            ("messages", &self.messages),
            ("symptoms", &self.symptoms),
            ("attachments", &self.attachments),
            ("prescriptions", &self.prescriptions),
            ("audit_inbox", &self.audit),
        ]
    }

    pub fn table_mut(&mut self, name: &str) -> Option<&mut dyn Table> {
        Some(match name {
            "users" => &mut self.users,
            "patients" => &mut self.patients,
            "patient_medical_info" => &mut self.medical_info,
            "allergies" => &mut self.allergies,
            "medications" => &mut self.medications,
            "medical_history" => &mut self.history,
            "conversations" => &mut self.conversations,
            "messages" => &mut self.messages,
            "symptoms" => &mut self.symptoms,
            "attachments" => &mut self.attachments,
            "prescriptions" => &mut self.prescriptions,
            "audit_inbox" => &mut self.audit,
            _ => return None,
        })
    }

    /// The document's own rows: id → (table, position).
    pub fn own(&self) -> Own {
        let mut own = HashMap::new();
        for (k, (_, t)) in self.tables().iter().enumerate() {
            for (i, id) in t.ids().iter().enumerate() {
                own.insert(*id, (k, i));
            }
        }
        own
    }

    /// Compares the rows the source yields (`self`) with the database's rows of the same
    /// document, table by table (see [`UserCols::compare_with`]); returns the number of source
    /// cells compared.
    pub fn compare(&self, have: &Rows, differ: &mut dyn FnMut(String, &'static str)) -> u64 {
        let (own, theirs) = (self.own(), have.own());
        let (o, t) = (&own, &theirs);
        self.users.compare_with(&have.users, "users", o, t, differ)
            + self.patients.compare_with(&have.patients, "patients", o, t, differ)
            + self.medical_info.compare_with(&have.medical_info, "patient_medical_info", o, t, differ)
            + self.allergies.compare_with(&have.allergies, "allergies", o, t, differ)
            + self.medications.compare_with(&have.medications, "medications", o, t, differ)
            + self.history.compare_with(&have.history, "medical_history", o, t, differ)
            + self.conversations.compare_with(&have.conversations, "conversations", o, t, differ)
            + self.messages.compare_with(&have.messages, "messages", o, t, differ)
            + self.symptoms.compare_with(&have.symptoms, "symptoms", o, t, differ)
            + self.attachments.compare_with(&have.attachments, "attachments", o, t, differ)
            + self.prescriptions.compare_with(&have.prescriptions, "prescriptions", o, t, differ)
            + self.audit.compare_with(&have.audit, "audit_inbox", o, t, differ)
    }

    /// Records the legacy id → new id mapping of a document.
    pub fn map(&mut self, collection: &str, legacy_id: &str, new_id: Uuid) {
        self.map.collection.push(collection.to_owned());
        self.map.legacy_id.push(legacy_id.to_owned());
        self.map.new_id.push(new_id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allergy(rows: &mut Rows, id: Uuid, patient: Uuid, substance: &str) {
        let t = &mut rows.allergies;
        t.id.push(id);
        t.patient_id.push(patient);
        t.substance.push(substance.into());
        t.reaction_enc.push(Some(b"hives".to_vec()));
        t.severity.push("mild".into());
        t.status.push("active".into());
        t.created_at.push(DateTime::<Utc>::UNIX_EPOCH);
    }

    fn problems(want: &Rows, have: &Rows) -> (u64, Vec<(String, &'static str)>) {
        let mut found = Vec::new();
        let n = want.compare(have, &mut |field, problem| found.push((field, problem)));
        (n, found)
    }

    /// Own rows compare by position (each side has its own new ids), references by id; a
    /// changed cell, a missing row and an extra row are each named.
    #[test]
    fn rows_compare_by_position_and_reference() {
        let patient = Uuid::now_v7();
        let mut want = Rows::default();
        allergy(&mut want, Uuid::now_v7(), patient, "peanut");
        let mut have = Rows::default();
        allergy(&mut have, Uuid::now_v7(), patient, "peanut");
        assert_eq!(problems(&want, &have), (6, vec![]));

        have.allergies.patient_id[0] = Uuid::now_v7();
        have.allergies.reaction_enc[0] = Some(b"hive".to_vec());
        let (_, found) = problems(&want, &have);
        assert_eq!(
            found,
            vec![
                ("allergies[0].patient_id".to_owned(), "differs"),
                ("allergies[0].reaction_enc".to_owned(), "differs")
            ]
        );

        let mut have = Rows::default();
        allergy(&mut have, Uuid::now_v7(), patient, "peanut");
        allergy(&mut have, Uuid::now_v7(), patient, "latex");
        let (n, found) = problems(&want, &have);
        assert_eq!(n, 6);
        assert_eq!(found.len(), 6);
        assert!(
            found.iter().all(|(f, p)| f.starts_with("allergies[1].") && *p == "in the database, not in the source")
        );
        let (n, found) = problems(&have, &want);
        assert_eq!(n, 12);
        assert!(found.iter().all(|(f, p)| f.starts_with("allergies[1].") && *p == "missing in the database"));
    }

    /// A reference to one of the document's own rows must point at the same position.
    #[test]
    fn own_ids_compare_by_position() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut want = Rows::default();
        allergy(&mut want, a, a, "peanut");
        let mut have = Rows::default();
        allergy(&mut have, b, b, "peanut");
        assert_eq!(problems(&want, &have).1, vec![]);
        have.allergies.patient_id[0] = a;
        assert_eq!(problems(&want, &have).1, vec![("allergies[0].patient_id".to_owned(), "differs")]);
    }

    #[test]
    fn floats_compare_exactly() {
        let none = Own::new();
        assert!(0.1f64.same(&0.1, &none, &none));
        assert!(!0.0f64.same(&-0.0, &none, &none));
        assert!(f64::NAN.same(&f64::NAN, &none, &none));
        assert!(!0.1235f64.same(&0.12345, &none, &none));
    }
}
