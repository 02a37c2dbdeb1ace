//! The printable prescription: one A4 page in built-in Helvetica (no embedded font, so Latin
//! text only; anything else is replaced by `?`). The page carries the prescription id as
//! text and a SHA-256 checksum over the canonical fields, so a pharmacist can check a
//! printout against the system. Rendering is CPU work: callers run it off the executor.

use printpdf::{BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem};
use sha2::{Digest, Sha256};

/// What goes on the page (already decrypted and formatted).
#[derive(Debug, Clone)]
pub struct PrescriptionSheet {
    pub prescription_id: String,
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_mrn: String,
    pub prescriber_id: String,
    pub medication: String,
    pub dose: String,
    pub quantity: String,
    pub sig: String,
    pub refills: String,
    pub issued: String,
    pub expires: String,
    pub status: String,
}

impl PrescriptionSheet {
    /// SHA-256 (hex) of the fields, newline-separated in a fixed order.
    pub fn checksum(&self) -> String {
        let mut h = Sha256::new();
        for f in self.fields() {
            h.update(f.1.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    fn fields(&self) -> [(&'static str, &str); 13] {
        [
            ("Prescription", &self.prescription_id),
            ("Patient", &self.patient_name),
            ("Date of birth", &self.patient_birth_date),
            ("MRN", &self.patient_mrn),
            ("Prescriber", &self.prescriber_id),
            ("Medication", &self.medication),
            ("Dose", &self.dose),
            ("Quantity", &self.quantity),
            ("Sig", &self.sig),
            ("Refills", &self.refills),
            ("Issued", &self.issued),
            ("Expires", &self.expires),
            ("Status", &self.status),
        ]
    }
}

/// Renders the sheet; returns the PDF bytes and the checksum printed on it.
pub fn render(sheet: &PrescriptionSheet) -> (Vec<u8>, String) {
    let checksum = sheet.checksum();
    let font =
        |bold: bool| PdfFontHandle::Builtin(if bold { BuiltinFont::HelveticaBold } else { BuiltinFont::Helvetica });
    let mut ops = vec![
        Op::StartTextSection,
        Op::SetTextCursor { pos: Point::new(Mm(20.0), Mm(275.0)) },
        Op::SetFont { font: font(true), size: Pt(18.0) },
        Op::SetLineHeight { lh: Pt(24.0) },
        Op::ShowText { items: vec![TextItem::Text("Prescription".into())] },
        Op::AddLineBreak,
        Op::SetFont { font: font(false), size: Pt(11.0) },
        Op::SetLineHeight { lh: Pt(16.0) },
    ];
    for (label, value) in sheet.fields() {
        // The sig may span lines: print each on its own line.
        for (i, line) in value.lines().chain(value.is_empty().then_some("")).enumerate() {
            let text = if i == 0 { format!("{label}: {}", latin(line)) } else { format!("    {}", latin(line)) };
            ops.push(Op::ShowText { items: vec![TextItem::Text(text)] });
            ops.push(Op::AddLineBreak);
        }
    }
    ops.extend([
        Op::AddLineBreak,
        Op::SetFont { font: font(false), size: Pt(8.0) },
        Op::ShowText { items: vec![TextItem::Text(format!("Checksum SHA-256: {checksum}"))] },
        Op::EndTextSection,
    ]);
    let mut doc = PdfDocument::new("Prescription");
    doc.with_pages(vec![PdfPage::new(Mm(210.0), Mm(297.0), ops)]);
    let opts = PdfSaveOptions { optimize: false, ..PdfSaveOptions::default() };
    let bytes = doc.save(&opts, &mut Vec::new());
    (bytes, checksum)
}

/// Built-in fonts only cover Latin-1; keep printable ASCII/Latin-1 and replace the rest.
fn latin(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if (' '..='~').contains(&c) || ('\u{a0}'..='\u{ff}').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet() -> PrescriptionSheet {
        PrescriptionSheet {
            prescription_id: "0190f3c2-0000-7000-8000-000000000001".into(),
            patient_name: "Ada Lovelace".into(),
            patient_birth_date: "1815-12-10".into(),
            patient_mrn: "MRN-1".into(),
            prescriber_id: "0190f3c2-0000-7000-8000-000000000002".into(),
            medication: "amoxicillin".into(),
            dose: "500 mg".into(),
            quantity: "30".into(),
            sig: "one capsule\nthree times daily".into(),
            refills: "1 of 2 used".into(),
            issued: "2026-01-01".into(),
            expires: "2027-01-01".into(),
            status: "active".into(),
        }
    }

    #[test]
    fn renders_a_pdf_with_the_id_and_checksum_as_text() {
        let s = sheet();
        let (pdf, sum) = render(&s);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains(&s.prescription_id), "id printed");
        assert!(text.contains(&sum), "checksum printed");
        assert_eq!(sum.len(), 64);
        let mut other = s.clone();
        other.quantity = "31".into();
        assert_ne!(other.checksum(), sum, "checksum covers the fields");
    }

    #[test]
    fn non_latin_text_is_replaced_not_dropped() {
        assert_eq!(latin("Zoë 李"), "Zoë ?");
    }
}
