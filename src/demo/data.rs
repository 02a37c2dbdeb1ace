//! Word pools for synthetic records: names in several scripts, ICD-10-CM codes with their
//! conditions, drugs with doses and routes, symptoms, message templates. Invented people;
//! real-looking clinical vocabulary.

pub const GIVEN: &[&str] = &[
    "José",
    "Zoë",
    "Łukasz",
    "Siobhán",
    "Amara",
    "Chen",
    "Priya",
    "Oluwaseun",
    "Björn",
    "Aiko",
    "Mateo",
    "Fatima",
    "Noah",
    "Élodie",
    "Dmitri",
    "娜",
    "Nguyễn Văn",
    "Søren",
    "Ana-María",
    "Kwame",
];
pub const FAMILY: &[&str] = &[
    "Müller",
    "O'Brien",
    "García",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Johansson",
    "Dubois",
    "Smith",
    "Ivanova",
    "Đặng",
    "Silva",
    "Patel",
    "Schmidt-Weber",
    "李",
    "Nørgaard",
    "van der Berg",
    "Al-Sayed",
];
pub const ICD10: &[(&str, &str)] = &[
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("M54.5", "Low back pain"),
    ("F32.9", "Major depressive disorder, single episode"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("G43.909", "Migraine, unspecified"),
    ("E03.9", "Hypothyroidism, unspecified"),
    ("I48.91", "Unspecified atrial fibrillation"),
    ("S52.521A", "Torus fracture of lower end of right radius, initial encounter"),
    ("T36.0X1A", "Poisoning by penicillins, accidental, initial encounter"),
    ("Z00.00", "General adult medical examination without abnormal findings"),
];
/// (drug, dose, route, frequency)
pub const DRUGS: &[(&str, &str, &str, &str)] = &[
    ("Metformin", "500 mg", "oral", "twice daily with meals"),
    ("Lisinopril", "10 mg", "oral", "once daily"),
    ("Atorvastatin", "20 mg", "oral", "once daily at night"),
    ("Salbutamol", "2 puffs", "inhaled", "as needed, max 8 puffs/day"),
    ("Levothyroxine", "100 mcg", "oral", "once daily before breakfast"),
    ("Omeprazole", "20 mg", "oral", "once daily"),
    ("Sertraline", "50 mg", "oral", "once daily"),
    ("Paracétamol", "1 tablet", "oral", "every 6 hours as needed"),
    ("Insulin glargine", "12 units", "subcutaneous", "once daily at 22:00"),
    ("Hydrocortisone cream 1%", "1 application", "topical", "twice daily"),
];
pub const ALLERGENS: &[&str] =
    &["Penicillin", "Peanuts", "Latex", "Sulfonamides", "Shellfish", "Ibuprofen", "Pollen (Birke/Betula)", "Eggs"];
pub const REACTIONS: &[&str] =
    &["Hives", "Anaphylaxis — required epinephrine", "Rash on forearms\nand neck", "Wheezing", "Swelling of the lips"];
pub const SEVERITIES: &[&str] = &["mild", "moderate", "severe", "life-threatening"];
pub const SYMPTOMS: &[&str] =
    &["Fever", "Headache", "Cough", "Nausea", "Fatigue", "Dizziness", "Chest tightness", "Sore throat"];
pub const SUBJECTS: &[&str] = &[
    "Fever since Tuesday",
    "Question about my prescription",
    "Résultats d'analyse",
    "Persistent cough 🤒",
    "Follow-up after surgery",
    "血压 readings",
];
pub const MESSAGES: &[&str] = &[
    "Hello doctor,\nI have had a fever of 38.5 °C since Tuesday.\nShould I come in?",
    "Thank you — the new dose works much better. 🙏",
    "Please take the medication with food and call if the rash spreads.\n\nBest regards",
    "Can I take ibuprofen together with my current medication?",
    "Les résultats sont normaux.\nOn se revoit dans 3 mois.",
    "I'm attaching the photo of the rash (left arm).",
    "Blood pressure this morning: 142/91 mmHg\nyesterday: 138/88 mmHg",
];
pub const INSTRUCTIONS: &[&str] = &[
    "Take one tablet by mouth twice daily with meals.",
    "Inhale 2 puffs every 4–6 hours as needed for wheezing.\nRinse mouth after use.",
    "Apply a thin layer to the affected area twice daily.\nDo not use on the face.",
    "Take 30 minutes before breakfast on an empty stomach.",
];
pub const ACTIONS: &[(&str, Option<&str>)] = &[
    ("login", None),
    ("view_record", Some("patient")),
    ("view_conversation", Some("conversation")),
    ("send_message", Some("conversation")),
    ("update_record", Some("patient")),
    ("create_prescription", Some("prescription")),
    ("view_prescription", Some("prescription")),
    ("logout", None),
];
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "MedChat-Android/3.2.1 (Pixel 7; Android 14)",
];
pub const CITIES: &[(&str, &str)] =
    &[("Lyon", "69001"), ("Kraków", "31-001"), ("Springfield", "62701"), ("Osaka", "530-0001")];
