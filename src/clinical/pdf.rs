//! The printable prescription: one A4 page whose text is exactly the stored values, in fonts
//! embedded from files in the repository (`assets/fonts/`, with their licences): DejaVu Sans
//! for Latin (Vietnamese included), Greek, Cyrillic and symbols such as `≥`, and a Noto Sans
//! CJK subset for Chinese, Japanese and Korean names. Each character is set in the first font
//! that has it; a character neither has prints as U+FFFD (never a silent `?`). Only the glyphs
//! a page uses are embedded.
//!
//! What a pharmacist needs to dispense: the prescriber (full name and credentials, NPI, DEA
//! number, practice name, address and phone — the admin-managed prescriber profile,
//! `src/clinical/prescribers.rs`), the patient (name, date of birth, address, MRN), the drug,
//! strength, form, DEA schedule, directions, quantity in figures and words, refills and the
//! date written, then the electronic-signature statement: "Electronically signed by <name,
//! credentials> (NPI …) at <issue time, UTC>; document SHA-256 <hash>". The signing time is
//! the prescription's issue time (the prescriber writes and signs it in one request). The
//! hash is [`PrescriptionSheet::checksum`]: SHA-256 over every printed field's value in
//! printed order, each followed by a newline — the page above the statement, not the
//! statement itself nor the print time (a document cannot contain its own hash) — so it
//! recomputes from the API's data or from the page's text. The metadata is true: the creation
//! date is the rendering time, and no conformance (PDF/X, PDF/A) is claimed. Rendering is CPU
//! work: callers run it off the executor.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use printpdf::{
    Mm, Op, ParsedFont, PdfConformance, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
use sha2::{Digest, Sha256};

/// What goes on the page (already decrypted and formatted), in printed order.
#[derive(Debug, Clone)]
pub struct PrescriptionSheet {
    pub prescription_id: String,
    /// The date the prescription was written (issued), `YYYY-MM-DD`.
    pub date_written: String,
    pub expires: String,
    pub status: String,
    /// `Full Name, credentials`, or a notice that no prescriber profile is on file.
    pub prescriber: String,
    pub npi: String,
    pub dea: String,
    pub practice: String,
    pub practice_address: String,
    pub practice_phone: String,
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_address: String,
    pub patient_mrn: String,
    pub drug: String,
    pub strength: String,
    pub form: String,
    pub schedule: String,
    pub directions: String,
    /// In figures and words: `30 (thirty)`.
    pub quantity: String,
    pub refills: String,
    /// The electronic signature: who signed and when (the prescription's issue time, when the
    /// prescriber wrote and signed it); `None`: no prescriber profile, not signed.
    pub signed_by: Option<(String, String)>,
}

impl PrescriptionSheet {
    /// The document hash printed in the signature statement: SHA-256 (hex) of the canonical
    /// prescription content — every field's value as printed after its label, in printed
    /// order, each followed by `\n` (a multi-line value keeps its inner newlines). It covers
    /// everything above the signature statement and not the statement or the print time
    /// (a document cannot contain its own hash), so it recomputes from the API's data
    /// (prescription, patient, prescriber profile) or from the page.
    pub fn checksum(&self) -> String {
        let mut h = Sha256::new();
        for f in self.fields() {
            h.update(f.1.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// (label, value) in printed order.
    pub fn fields(&self) -> [(&'static str, &str); 22] {
        [
            ("Prescription", &self.prescription_id),
            ("Date written", &self.date_written),
            ("Expires", &self.expires),
            ("Status", &self.status),
            ("Prescriber", &self.prescriber),
            ("NPI", &self.npi),
            ("DEA", &self.dea),
            ("Practice", &self.practice),
            ("Practice address", &self.practice_address),
            ("Practice phone", &self.practice_phone),
            ("Patient", &self.patient_name),
            ("Date of birth", &self.patient_birth_date),
            ("Patient address", &self.patient_address),
            ("MRN", &self.patient_mrn),
            ("Drug", &self.drug),
            ("Strength", &self.strength),
            ("Form", &self.form),
            ("Schedule", &self.schedule),
            ("Directions", &self.directions),
            ("Quantity", &self.quantity),
            ("Refills", &self.refills),
            ("Signature", if self.signed_by.is_some() { "electronic" } else { "none" }),
        ]
    }

    /// The signature statement printed under the fields.
    pub fn signature_statement(&self, checksum: &str) -> String {
        match &self.signed_by {
            Some((who, at)) => format!("Electronically signed by {who} at {at}; document SHA-256 {checksum}"),
            None => format!("Not signed: no prescriber profile on file; document SHA-256 {checksum}"),
        }
    }
}

/// A count in English words, as prescriptions spell quantities out (`30` → `thirty`).
pub fn number_words(n: u64) -> String {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    fn below_thousand(n: u64) -> String {
        let (h, rest) = (n / 100, n % 100);
        let rest_words = match rest {
            0 => String::new(),
            1..=19 => ONES[rest as usize].to_owned(),
            _ if rest % 10 == 0 => TENS[(rest / 10) as usize].to_owned(),
            _ => format!("{}-{}", TENS[(rest / 10) as usize], ONES[(rest % 10) as usize]),
        };
        match (h, rest) {
            (0, _) => rest_words,
            (_, 0) => format!("{} hundred", ONES[h as usize]),
            _ => format!("{} hundred {rest_words}", ONES[h as usize]),
        }
    }
    if n < 20 {
        return ONES[n as usize].to_owned();
    }
    let mut parts = Vec::new();
    for (scale, name) in [(1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"), (1, "")] {
        let chunk = (n / scale) % 1000;
        if chunk > 0 {
            let w = below_thousand(chunk);
            parts.push(if name.is_empty() { w } else { format!("{w} {name}") });
        }
    }
    parts.join(" ")
}

/// The embedded fonts, in the order a character looks for its glyph.
const FONT_FILES: [&[u8]; 2] = [
    include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf"),
    include_bytes!("../../assets/fonts/NotoSansCJKsc-subset.otf"),
];

/// Parsed once per process (the CJK subset holds ~13,000 glyphs).
fn fonts() -> &'static [ParsedFont] {
    static FONTS: OnceLock<Vec<ParsedFont>> = OnceLock::new();
    FONTS.get_or_init(|| {
        FONT_FILES.iter().filter_map(|bytes| ParsedFont::from_bytes(bytes, 0, &mut Vec::new())).collect()
    })
}

/// Text set in one font: the index into [`fonts`] and the characters.
type Run = (usize, String);

/// Splits `text` into runs of one font each (index into [`fonts`]); a character no font has
/// becomes U+FFFD in the first font.
fn runs(fonts: &[ParsedFont], text: &str) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for c in text.chars() {
        let found = fonts.iter().position(|f| f.lookup_glyph_index(u32::from(c)).is_some());
        let (font, c) = found.map_or((0, '\u{FFFD}'), |i| (i, c));
        match out.last_mut() {
            Some((f, run)) if *f == font => run.push(c),
            _ => out.push((font, c.to_string())),
        }
    }
    out
}

/// Width of `text` in points at `size`, from the fonts' advance widths.
fn width(fonts: &[ParsedFont], text: &str, size: f32) -> f32 {
    runs(fonts, text)
        .iter()
        .flat_map(|(i, run)| {
            let font = &fonts[*i];
            run.chars().map(move |c| {
                let gid = font.lookup_glyph_index(u32::from(c)).unwrap_or(0);
                f32::from(font.get_glyph_width(gid).unwrap_or(0)) * size / f32::from(font.units_per_em.max(1))
            })
        })
        .sum()
}

/// Breaks `text` into lines no wider than `max` points (at spaces where it can, anywhere in a
/// word longer than a line, e.g. CJK text without spaces).
fn wrap(fonts: &[ParsedFont], text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_inclusive(' ') {
        if !line.is_empty() && width(fonts, &format!("{line}{}", word.trim_end()), size) > max {
            lines.push(std::mem::take(&mut line).trim_end().to_owned());
        }
        for c in word.chars() {
            if !line.is_empty() && c != ' ' && width(fonts, &format!("{line}{c}"), size) > max {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    lines.push(line.trim_end().to_owned());
    lines
}

/// Renders the sheet now; returns the PDF bytes and the checksum printed on it.
pub fn render(sheet: &PrescriptionSheet) -> (Vec<u8>, String) {
    render_at(sheet, Utc::now())
}

const LEFT: f32 = 20.0;
const LINE_WIDTH_PT: f32 = 170.0 / 25.4 * 72.0;

/// Renders the sheet as created at `at` (the PDF's CreationDate and the printed time).
pub fn render_at(sheet: &PrescriptionSheet, at: DateTime<Utc>) -> (Vec<u8>, String) {
    let checksum = sheet.checksum();
    let fonts = fonts();
    // The page as (line height, font size, text) lines.
    let mut lines: Vec<(f32, f32, String)> = vec![(26.0, 18.0, "Prescription".into())];
    for (label, value) in sheet.fields() {
        // Each stored line on its own printed line(s); the label only on the first.
        let stored: Vec<&str> = if value.is_empty() { vec![""] } else { value.lines().collect() };
        for (i, part) in stored.iter().enumerate() {
            let text = if i == 0 { format!("{label}: {part}") } else { format!("    {part}") };
            lines.extend(wrap(fonts, &text, 11.0, LINE_WIDTH_PT).into_iter().map(|l| (16.0, 11.0, l)));
        }
    }
    lines.push((16.0, 11.0, String::new()));
    let statement = sheet.signature_statement(&checksum);
    lines.extend(wrap(fonts, &statement, 9.0, LINE_WIDTH_PT).into_iter().map(|l| (12.0, 9.0, l)));
    lines.push((11.0, 8.0, format!("Printed {} UTC", at.format("%Y-%m-%d %H:%M:%S"))));

    let runs: Vec<(f32, f32, Vec<Run>)> =
        lines.into_iter().map(|(lh, size, text)| (lh, size, runs(fonts, &text))).collect();
    // Each font cut down to the characters this page uses before it is embedded.
    let mut doc = PdfDocument::new(&format!("Prescription {}", sheet.prescription_id));
    let ids: Vec<_> = fonts
        .iter()
        .enumerate()
        .map(|(i, font)| {
            let used = runs.iter().flat_map(|(_, _, r)| r).filter(|(f, _)| *f == i).flat_map(|(_, t)| t.chars());
            let subset = subset(FONT_FILES[i], font, used);
            doc.add_font(subset.as_ref().unwrap_or(font))
        })
        .collect();
    let mut ops = vec![Op::StartTextSection, Op::SetTextCursor { pos: Point::new(Mm(LEFT), Mm(275.0)) }];
    for (lh, size, line) in runs {
        ops.push(Op::SetLineHeight { lh: Pt(lh) });
        for (font, run) in line {
            ops.push(Op::SetFont { font: PdfFontHandle::External(ids[font].clone()), size: Pt(size) });
            ops.push(Op::ShowText { items: vec![TextItem::Text(run)] });
        }
        ops.push(Op::AddLineBreak);
    }
    ops.push(Op::EndTextSection);

    let info = &mut doc.metadata.info;
    let when = printpdf::OffsetDateTime::from_unix_timestamp(at.timestamp()).unwrap_or_else(|_| {
        printpdf::OffsetDateTime::from_unix_timestamp(0).unwrap_or_else(|_| printpdf::OffsetDateTime::now_utc())
    });
    info.creation_date = when;
    info.modification_date = when;
    info.metadata_date = when;
    info.conformance = PdfConformance::default(); // custom: claims no standard
    info.creator = "Custos".into();
    info.producer = "Custos (printpdf)".into();
    info.subject = "Prescription".into();
    info.document_title = format!("Prescription {}", sheet.prescription_id);
    doc.with_pages(vec![PdfPage::new(Mm(210.0), Mm(297.0), ops)]);
    let bytes = doc.save(&PdfSaveOptions::default(), &mut Vec::new());
    (without_conformance_claim(bytes), checksum)
}

/// `font` (parsed from `bytes`) with only the glyphs of `used` (and .notdef), so a page embeds
/// kilobytes, not the 2.7 MB CJK subset. printpdf subsets only with its `text_layout` feature
/// (a text-layout engine this page does not need); allsorts, which it uses anyway, does the
/// cut. `None` (the full font is embedded) if the font cannot be subset.
fn subset(bytes: &[u8], font: &ParsedFont, used: impl Iterator<Item = char>) -> Option<ParsedFont> {
    use allsorts::binary::read::ReadScope;
    use allsorts::font_data::FontData;
    use allsorts::subset::{CmapTarget, SubsetProfile};

    let mut glyphs: Vec<u16> = used.filter_map(|c| font.lookup_glyph_index(u32::from(c))).collect();
    glyphs.push(0);
    glyphs.sort_unstable();
    glyphs.dedup();
    let data = ReadScope::new(bytes).read::<FontData<'_>>().ok()?;
    let provider = data.table_provider(0).ok()?;
    let cut = allsorts::subset::subset(&provider, &glyphs, &SubsetProfile::Minimal, CmapTarget::Unicode);
    let parsed = cut.ok().and_then(|cut| ParsedFont::from_bytes(&cut, 0, &mut Vec::new()));
    if parsed.is_none() {
        tracing::warn!("prescription font could not be subset: embedding the whole font");
    }
    parsed
}

/// printpdf always writes `GTS_PDFXVersion` into the document information, empty when no
/// PDF/X conformance is chosen; a PDF that is not PDF/X should not carry the key at all.
fn without_conformance_claim(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut doc) = lopdf::Document::load_mem(&bytes) else { return bytes };
    let info = doc.trailer.get(b"Info").and_then(lopdf::Object::as_reference);
    let Ok(info) = info.and_then(|id| doc.get_dictionary_mut(id)) else { return bytes };
    info.remove(b"GTS_PDFXVersion");
    let mut out = Vec::with_capacity(bytes.len());
    match doc.save_to(&mut out) {
        Ok(()) => out,
        Err(_) => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet() -> PrescriptionSheet {
        PrescriptionSheet {
            prescription_id: "0190f3c2-0000-7000-8000-000000000001".into(),
            date_written: "2026-01-01".into(),
            expires: "2027-01-01".into(),
            status: "active".into(),
            prescriber: "Maria Silva, MD".into(),
            npi: "1234567893".into(),
            dea: "AB1234563".into(),
            practice: "Harbor Clinic".into(),
            practice_address: "1 Main St\nSpringfield, IL 62701".into(),
            practice_phone: "+15550100199".into(),
            patient_name: "Łucja Nguyễn 王".into(),
            patient_birth_date: "1815-12-10".into(),
            patient_address: "2 Elm St".into(),
            patient_mrn: "MRN-1".into(),
            drug: "amoxicillin".into(),
            strength: "500 mg".into(),
            form: "capsule".into(),
            schedule: "not controlled".into(),
            directions: "one capsule every ≥ 8 h\nwith food".into(),
            quantity: "30 (thirty)".into(),
            refills: "2 (two) allowed, 1 used".into(),
            signed_by: Some(("Maria Silva, MD (NPI 1234567893)".into(), "2026-01-01T09:00:00Z".into())),
        }
    }

    #[test]
    fn quantities_in_words() {
        let cases = [
            (0, "zero"),
            (7, "seven"),
            (30, "thirty"),
            (42, "forty-two"),
            (100, "one hundred"),
            (115, "one hundred fifteen"),
            (1000, "one thousand"),
            (2021, "two thousand twenty-one"),
            (90_000, "ninety thousand"),
        ];
        for (n, w) in cases {
            assert_eq!(number_words(n), w, "{n}");
        }
    }

    #[test]
    fn both_fonts_load_and_characters_find_their_font() {
        let f = fonts();
        assert_eq!(f.len(), 2, "the embedded fonts parse");
        assert_eq!(runs(f, "Łucja Nguyễn 王 ≥"), vec![(0, "Łucja Nguyễn ".into()), (1, "王".into()), (0, " ≥".into())]);
        assert_eq!(runs(f, "\u{10FFFD}"), vec![(0, "\u{FFFD}".into())], "no font: U+FFFD, never dropped");
    }

    #[test]
    fn long_lines_wrap_within_the_page_and_keep_every_character() {
        let f = fonts();
        let text = format!("Sig: {} {}", "take one tablet by mouth".repeat(8), "王".repeat(80));
        let lines = wrap(f, &text, 11.0, LINE_WIDTH_PT);
        assert!(lines.len() > 3, "{lines:?}");
        assert!(lines.iter().all(|l| width(f, l, 11.0) <= LINE_WIDTH_PT));
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn renders_a_pdf_with_true_metadata_and_no_conformance_claim() {
        let s = sheet();
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:11:12Z").unwrap().with_timezone(&Utc);
        let (pdf, sum) = render_at(&s, at);
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(sum.len(), 64);
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let info = doc.trailer.get(b"Info").and_then(lopdf::Object::as_reference).unwrap();
        let info = doc.get_dictionary(info).unwrap();
        assert_eq!(info.get(b"CreationDate").unwrap().as_str().unwrap(), b"D:20261202101112+00'00'");
        assert!(info.get(b"GTS_PDFXVersion").is_err(), "no PDF/X claim");
        let mut other = s.clone();
        other.quantity = "31 (thirty-one)".into();
        assert_ne!(other.checksum(), sum, "checksum covers the fields");
        assert!(pdf.len() < 100_000, "fonts are cut to the page: {} bytes", pdf.len());
    }
}
