//! The rows one batch writes, column by column (what `UNNEST` takes), for every target
//! table. A document's rows are built on their own and appended to the batch, so a batch
//! that the database refuses can be retried document by document.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
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
            fn render(&self, table: &str, own: &HashMap<Uuid, String>, out: &mut BTreeMap<String, String>) {
                for i in 0..self.$first.len() {
                    $(out.insert(format!("{table}[{i}].{}", stringify!($field)), self.$field[i].render(own));)*
                }
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
    /// Every cell but the row id, as `table[i].column` → a comparable rendering (ids of
    /// rows of the same document as their position, bytes as their SHA-256).
    fn render(&self, table: &str, own: &HashMap<Uuid, String>, out: &mut BTreeMap<String, String>);
}

/// One cell, rendered for comparison (never printed: it may be PHI).
pub trait Cell {
    fn render(&self, own: &HashMap<Uuid, String>) -> String;
    fn open_with(&mut self, _open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {}
}

impl Cell for Uuid {
    fn render(&self, own: &HashMap<Uuid, String>) -> String {
        own.get(self).cloned().unwrap_or_else(|| self.to_string())
    }
}

impl Cell for Vec<u8> {
    fn render(&self, _: &HashMap<Uuid, String>) -> String {
        hex::encode(Sha256::digest(self))
    }
    fn open_with(&mut self, open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {
        *self = open(self);
    }
}

impl<T: Cell> Cell for Option<T> {
    fn render(&self, own: &HashMap<Uuid, String>) -> String {
        self.as_ref().map_or_else(|| "∅".to_owned(), |v| v.render(own))
    }
    fn open_with(&mut self, open: &mut dyn FnMut(&[u8]) -> Vec<u8>) {
        if let Some(v) = self {
            v.open_with(open);
        }
    }
}

macro_rules! debug_cells {
    ($($t:ty),*) => {
        $(impl Cell for $t {
            fn render(&self, _: &HashMap<Uuid, String>) -> String {
                format!("{self:?}")
            }
        })*
    };
}
debug_cells!(String, f64, i16, i32, i64, NaiveDate, DateTime<Utc>);

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

    /// Every cell of every compared table, with the document's own row ids replaced by
    /// `table[i]` (they are new on each side; references to other documents are compared).
    pub fn render(&self) -> BTreeMap<String, String> {
        let mut own = HashMap::new();
        for (table, t) in self.tables() {
            for (i, id) in t.ids().iter().enumerate() {
                own.insert(*id, format!("{table}[{i}]"));
            }
        }
        let mut out = BTreeMap::new();
        for (table, t) in self.tables() {
            t.render(table, &own, &mut out);
        }
        out
    }

    /// Records the legacy id → new id mapping of a document.
    pub fn map(&mut self, collection: &str, legacy_id: &str, new_id: Uuid) {
        self.map.collection.push(collection.to_owned());
        self.map.legacy_id.push(legacy_id.to_owned());
        self.map.new_id.push(new_id);
    }
}
