//! The rows one batch writes, column by column (what `UNNEST` takes), for every target
//! table. A document's rows are built on their own and appended to the batch, so a batch
//! that the database refuses can be retried document by document.

use chrono::{DateTime, NaiveDate, Utc};
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
    };
}

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
columns!(MapCols { collection: String, legacy_id: String, new_id: Uuid });

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

    /// Records the legacy id → new id mapping of a document.
    pub fn map(&mut self, collection: &str, legacy_id: &str, new_id: Uuid) {
        self.map.collection.push(collection.to_owned());
        self.map.legacy_id.push(legacy_id.to_owned());
        self.map.new_id.push(new_id);
    }
}
