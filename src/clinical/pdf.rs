//! The printable prescription: one A4 page whose text is exactly the stored values, in fonts
//! embedded from files in the repository (`assets/fonts/`, with their licences): DejaVu Sans
//! for Latin (Vietnamese included), Greek, Cyrillic and symbols such as `≥`, and a Noto Sans
//! CJK subset for Chinese, Japanese and Korean names. Each character is set in the first font
//! that has it; a character neither has prints as U+FFFD (never a silent `?`). Only the glyphs
//! a page uses are embedded. The page carries the prescription id and a SHA-256 checksum over
//! the fields, so a pharmacist can check a printout against the system — and, since the text
//! is the stored text, recompute the checksum from it. The metadata is true: the creation
//! date is the rendering time, and no conformance (PDF/X, PDF/A) is claimed. Rendering is CPU
//! work: callers run it off the executor.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use printpdf::{
    Mm, Op, ParsedFont, PdfConformance, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
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
    lines.push((11.0, 8.0, format!("Printed {} UTC", at.format("%Y-%m-%d %H:%M:%S"))));
    lines.push((11.0, 8.0, format!("Checksum SHA-256: {checksum}")));

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
            patient_name: "Łucja Nguyễn 王".into(),
            patient_birth_date: "1815-12-10".into(),
            patient_mrn: "MRN-1".into(),
            prescriber_id: "0190f3c2-0000-7000-8000-000000000002".into(),
            medication: "amoxicillin".into(),
            dose: "500 mg".into(),
            quantity: "30".into(),
            sig: "one capsule every ≥ 8 h\nwith food".into(),
            refills: "1 of 2 used".into(),
            issued: "2026-01-01".into(),
            expires: "2027-01-01".into(),
            status: "active".into(),
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
        other.quantity = "31".into();
        assert_ne!(other.checksum(), sum, "checksum covers the fields");
        assert!(pdf.len() < 100_000, "fonts are cut to the page: {} bytes", pdf.len());
    }
}
