//! Writes synthetic DICOM CT series (single-frame files or one enhanced multi-frame file) with
//! known geometry and values, for tests and the benchmark.
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};

use dicom::core::value::DataSetSequence;
use dicom::core::{DataElement, PrimitiveValue, VR};
use dicom::dictionary_std::{tags, uids};
use dicom::object::{FileMetaTableBuilder, InMemDicomObject};

/// A series description: every slice has the same size, orientation and spacing.
#[derive(Clone)]
pub struct Series {
    pub rows: usize,
    pub cols: usize,
    /// PixelSpacing: between rows, between columns (mm).
    pub pixel_spacing: [f64; 2],
    pub orientation: [f64; 6],
    pub positions: Vec<[f64; 3]>,
    pub slope: f64,
    pub intercept: f64,
    pub series_uid: String,
    pub series_number: i32,
    pub modality: &'static str,
    pub sop_class: &'static str,
}

impl Series {
    /// An axial series of `n` slices `dz` mm apart, positions starting at `origin`.
    pub fn axial(rows: usize, cols: usize, n: usize, dz: f64, origin: [f64; 3]) -> Self {
        Series {
            rows,
            cols,
            pixel_spacing: [0.5, 0.75],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            positions: (0..n).map(|k| [origin[0], origin[1], origin[2] + k as f64 * dz]).collect(),
            slope: 1.0,
            intercept: -1024.0,
            series_uid: "1.2.826.0.1.3680043.2.1125.99.1".into(),
            series_number: 2,
            modality: "CT",
            sop_class: uids::CT_IMAGE_STORAGE,
        }
    }
}

/// The stored value the synthetic series holds at slice `z`, row `y`, column `x`.
pub fn stored(z: usize, y: usize, x: usize) -> u16 {
    ((x * 3 + y * 5 + z * 11) % 3000) as u16
}

fn ds(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|v| format!("{}", (v * 1e6).round() / 1e6)).collect())
}

fn put_str(obj: &mut InMemDicomObject, tag: dicom::core::Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: dicom::core::Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

fn common(s: &Series, sop_uid: &str) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, s.sop_class);
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    put_str(&mut o, tags::MODALITY, VR::CS, s.modality);
    put_str(&mut o, tags::SERIES_DESCRIPTION, VR::LO, "synthetic");
    put_str(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.2.1125.99");
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &s.series_uid);
    o.put(DataElement::new(tags::SERIES_NUMBER, VR::IS, PrimitiveValue::from(s.series_number.to_string())));
    put_u16(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_u16(&mut o, tags::ROWS, s.rows as u16);
    put_u16(&mut o, tags::COLUMNS, s.cols as u16);
    put_u16(&mut o, tags::BITS_ALLOCATED, 16);
    put_u16(&mut o, tags::BITS_STORED, 12);
    put_u16(&mut o, tags::HIGH_BIT, 11);
    put_u16(&mut o, tags::PIXEL_REPRESENTATION, 0);
    o
}

fn save(obj: InMemDicomObject, s: &Series, sop_uid: &str, path: &Path) {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(s.sop_class)
        .media_storage_sop_instance_uid(sop_uid);
    obj.with_meta(meta).unwrap().write_to_file(path).unwrap();
}

fn pixels(s: &Series, z: usize, value: &dyn Fn(usize, usize, usize) -> u16) -> Vec<u16> {
    let mut v = Vec::with_capacity(s.rows * s.cols);
    for y in 0..s.rows {
        for x in 0..s.cols {
            v.push(value(z, y, x));
        }
    }
    v
}

/// Writes one file per slice into `dir`, named so that name order is the reverse of slice order.
pub fn write_slices(dir: &Path, s: &Series, value: &dyn Fn(usize, usize, usize) -> u16) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let n = s.positions.len();
    (0..n)
        .map(|z| {
            let sop = format!("{}.{}", s.series_uid, z + 1);
            let mut o = common(s, &sop);
            o.put(DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, ds(&s.positions[z])));
            o.put(DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, ds(&s.orientation)));
            o.put(DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&s.pixel_spacing)));
            o.put(DataElement::new(tags::RESCALE_SLOPE, VR::DS, ds(&[s.slope])));
            o.put(DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, ds(&[s.intercept])));
            o.put(DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from((z + 1).to_string())));
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(pixels(s, z, value).into()),
            ));
            let path = dir.join(format!("IM{:05}", n - z));
            save(o, s, &sop, &path);
            path
        })
        .collect()
}

/// Writes the series as one Enhanced CT multi-frame file (positions per frame, orientation,
/// spacing and rescale shared), frames stored in reverse slice order.
pub fn write_enhanced(path: &Path, s: &Series, value: &dyn Fn(usize, usize, usize) -> u16) {
    let s = Series { sop_class: "1.2.840.10008.5.1.4.1.1.2.1", ..s.clone() };
    let sop = format!("{}.1000", s.series_uid);
    let mut o = common(&s, &sop);
    let n = s.positions.len();
    o.put(DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from(n.to_string())));
    let item = |tag, elems: Vec<DataElement<InMemDicomObject>>| {
        let inner = InMemDicomObject::from_element_iter(elems);
        DataElement::new(tag, VR::SQ, DataSetSequence::from(vec![inner]))
    };
    let shared = InMemDicomObject::from_element_iter([
        item(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, ds(&s.orientation))],
        ),
        item(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&s.pixel_spacing))],
        ),
        item(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            vec![
                DataElement::new(tags::RESCALE_SLOPE, VR::DS, ds(&[s.slope])),
                DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, ds(&[s.intercept])),
            ],
        ),
    ]);
    o.put(DataElement::new(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![shared]),
    ));
    let order: Vec<usize> = (0..n).rev().collect();
    let per_frame: Vec<InMemDicomObject> = order
        .iter()
        .map(|&z| {
            InMemDicomObject::from_element_iter([item(
                tags::PLANE_POSITION_SEQUENCE,
                vec![DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, ds(&s.positions[z]))],
            )])
        })
        .collect();
    o.put(DataElement::new(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(per_frame),
    ));
    let all: Vec<u16> = order.iter().flat_map(|&z| pixels(&s, z, value)).collect();
    o.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(all.into())));
    save(o, &s, &sop, path);
}

/// Writes a minimal DICOMDIR in `root` referencing `files` (paths inside `root`).
pub fn write_dicomdir(root: &Path, files: &[PathBuf]) -> PathBuf {
    let records: Vec<InMemDicomObject> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap();
            let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            InMemDicomObject::from_element_iter([
                DataElement::new(tags::DIRECTORY_RECORD_TYPE, VR::CS, PrimitiveValue::from("IMAGE")),
                DataElement::new(tags::REFERENCED_FILE_ID, VR::CS, PrimitiveValue::Strs(parts.into())),
            ])
        })
        .collect();
    let mut o = InMemDicomObject::new_empty();
    o.put(DataElement::new(tags::DIRECTORY_RECORD_SEQUENCE, VR::SQ, DataSetSequence::from(records)));
    let path = root.join("DICOMDIR");
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::MEDIA_STORAGE_DIRECTORY_STORAGE)
        .media_storage_sop_instance_uid("1.2.826.0.1.3680043.2.1125.99.9");
    o.with_meta(meta).unwrap().write_to_file(&path).unwrap();
    path
}
