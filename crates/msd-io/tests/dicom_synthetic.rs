//! DICOM series the conformance set lacks, written here with known geometry: missing slices, mixed
//! sizes and orientations, repeated positions, gantry tilt, enhanced multi-frame, several series in
//! one folder, DICOMDIR, secondary captures.
mod common;

use common::synth::{self, Series};
use msd_io::Error;
use msd_io::dicom::{ReadOptions, Resampling};

fn hu(z: usize, y: usize, x: usize) -> f32 {
    f32::from(synth::stored(z, y, x)) - 1024.0
}

#[test]
fn axial_series_sorts_by_position_not_name_and_rescales() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series::axial(6, 5, 7, 2.5, [-10.0, 20.0, -30.0]);
    synth::write_slices(dir.path(), &s, &synth::stored);
    let v = msd_io::read_volume(dir.path()).unwrap();
    assert_eq!(v.shape(), [7, 6, 5]);
    let g = v.geometry();
    assert_eq!(g.spacing(), [0.75, 0.5, 2.5]);
    assert_eq!(g.origin(), [-10.0, 20.0, -30.0]);
    assert_eq!(g.direction(), msd_io::Geometry::IDENTITY);
    for ((z, y, x), &val) in v.data().indexed_iter() {
        assert_eq!(val, hu(z, y, x), "[{z}, {y}, {x}]");
    }
}

#[test]
fn descending_positions_give_the_same_volume() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Series::axial(4, 4, 5, 3.0, [0.0, 0.0, 0.0]);
    s.positions.reverse();
    synth::write_slices(dir.path(), &s, &synth::stored);
    let v = msd_io::read_volume(dir.path()).unwrap();
    // Sorted by increasing position along the normal: z index 0 is the lowest slice, which was
    // written as slice 4.
    assert_eq!(v.geometry().origin(), [0.0, 0.0, 0.0]);
    assert_eq!(v.data()[[0, 1, 2]], hu(4, 1, 2));
    assert_eq!(v.data()[[4, 1, 2]], hu(0, 1, 2));
}

#[test]
fn missing_slice_is_refused_or_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Series::axial(3, 3, 6, 2.0, [0.0, 0.0, 10.0]);
    s.positions.remove(3); // z = 16 mm is missing: steps 2, 2, 4, 2
    // Values linear in z (stored = 100 + 10 × position), so linear resampling is exact.
    let positions = s.positions.clone();
    let value = move |z: usize, _: usize, _: usize| (100.0 + 10.0 * positions[z][2]) as u16;
    synth::write_slices(dir.path(), &s, &value);
    match msd_io::dicom::read_series(dir.path(), &ReadOptions::default()) {
        Err(Error::UnevenSpacing { min_mm, max_mm, .. }) => {
            assert!((min_mm - 2.0).abs() < 1e-6 && (max_mm - 4.0).abs() < 1e-6, "{min_mm} {max_mm}");
        }
        other => panic!("expected UnevenSpacing, got {:?}", other.map(|v| v.volume.shape())),
    }
    let opts = ReadOptions { uneven_spacing: Resampling::Resample, ..ReadOptions::default() };
    let sv = msd_io::dicom::read_series(dir.path(), &opts).unwrap();
    assert!(sv.resampled_spacing);
    let v = sv.volume;
    assert_eq!(v.shape(), [6, 3, 3]);
    assert!((v.geometry().spacing()[2] - 2.0).abs() < 1e-9);
    for z in 0..6 {
        let want = 100.0 + 10.0 * (10.0 + 2.0 * z as f32) - 1024.0;
        assert!((v.data()[[z, 1, 1]] - want).abs() < 1e-3, "z {z}: {} vs {want}", v.data()[[z, 1, 1]]);
    }
}

#[test]
fn mixed_sizes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series::axial(4, 4, 3, 2.0, [0.0; 3]);
    synth::write_slices(&dir.path().join("a"), &s, &synth::stored);
    let mut t = Series::axial(5, 4, 1, 2.0, [0.0, 0.0, 6.0]);
    t.series_uid = s.series_uid.clone();
    synth::write_slices(&dir.path().join("b"), &t, &synth::stored);
    let err = msd_io::read_volume(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Dicom { .. }) && err.to_string().contains("mixed image sizes"), "{err}");
}

#[test]
fn mixed_orientations_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series::axial(4, 4, 3, 2.0, [0.0; 3]);
    synth::write_slices(&dir.path().join("a"), &s, &synth::stored);
    let mut t = Series::axial(4, 4, 1, 2.0, [0.0, 0.0, 6.0]);
    t.orientation = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
    synth::write_slices(&dir.path().join("b"), &t, &synth::stored);
    let err = msd_io::read_volume(dir.path()).unwrap_err();
    assert!(err.to_string().contains("mixed orientations"), "{err}");
}

#[test]
fn repeated_positions_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Series::axial(4, 4, 4, 2.0, [0.0; 3]);
    s.positions[2] = s.positions[1];
    synth::write_slices(dir.path(), &s, &synth::stored);
    let err = msd_io::read_volume(dir.path()).unwrap_err();
    assert!(err.to_string().contains("same position"), "{err}");
}

#[test]
fn gantry_tilt_is_refused_or_resampled_keeping_world_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (n, dz, tilt) = (12usize, 2.0f64, 15f64.to_radians());
    let mut s = Series::axial(40, 8, n, dz, [0.0; 3]);
    s.pixel_spacing = [1.0, 1.0];
    // Each slice is shifted along y by dz·tan(tilt): the slice step leaves the normal by 15°.
    s.positions = (0..n).map(|k| [0.0, k as f64 * dz * tilt.tan(), k as f64 * dz]).collect();
    // A bright line along z at world y = 20 mm: in slice k it sits at row 20 − shift_k.
    let positions = s.positions.clone();
    let value = move |z: usize, y: usize, _x: usize| {
        let row = 20.0 - positions[z][1];
        if (y as f64 - row).abs() < 0.5 { 3000 } else { 24 }
    };
    synth::write_slices(dir.path(), &s, &value);
    let refuse = ReadOptions { gantry_tilt: Resampling::Refuse, ..ReadOptions::default() };
    match msd_io::dicom::read_series(dir.path(), &refuse) {
        Err(Error::GantryTilt { angle_deg, .. }) => assert!((angle_deg - 15.0).abs() < 0.01, "{angle_deg}"),
        other => panic!("expected GantryTilt, got {:?}", other.map(|v| v.volume.shape())),
    }
    let sv = msd_io::dicom::read_series(dir.path(), &ReadOptions::default()).unwrap();
    assert!(sv.resampled_tilt && (sv.tilt_deg - 15.0).abs() < 0.01);
    let v = &sv.volume;
    assert!(v.geometry().is_orthogonal(1e-9));
    assert!((v.geometry().spacing()[2] - dz).abs() < 1e-6);
    // Every slice's brightest row is at world y = 20 mm.
    for z in 0..n {
        let (best, _) = (0..v.shape()[1])
            .map(|y| (y, v.data()[[z, y, 3]]))
            .fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
        let world = v.geometry().index_to_world([3.0, best as f64, z as f64]);
        assert!((world[1] - 20.0).abs() <= 0.5 + 1e-6, "slice {z}: bright row at y = {} mm", world[1]);
    }
}

#[test]
fn enhanced_multiframe_matches_single_frame_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Series::axial(6, 7, 5, 1.25, [3.0, -4.0, 5.0]);
    let c = 30f64.to_radians();
    s.orientation = [c.cos(), c.sin(), 0.0, 0.0, 0.0, -1.0]; // oblique coronal
    s.positions =
        (0..5).map(|k| [3.0 + k as f64 * 1.25 * c.sin(), -4.0 - k as f64 * 1.25 * c.cos(), 5.0]).collect();
    synth::write_slices(&dir.path().join("single"), &s, &synth::stored);
    synth::write_enhanced(&dir.path().join("multi.dcm"), &s, &synth::stored);
    let a = msd_io::read_volume(dir.path().join("single")).unwrap();
    let b = msd_io::read_volume(dir.path().join("multi.dcm")).unwrap();
    assert_eq!(a.data(), b.data());
    a.geometry().check_same_grid(b.geometry(), 1e-6).unwrap();
    assert!((a.geometry().spacing()[2] - 1.25).abs() < 1e-6);
}

#[test]
fn several_series_are_listed_and_selectable() {
    let dir = tempfile::tempdir().unwrap();
    let big = Series::axial(4, 4, 6, 2.0, [0.0; 3]);
    synth::write_slices(&dir.path().join("ct"), &big, &synth::stored);
    let mut small = Series::axial(4, 4, 3, 2.0, [0.0; 3]);
    small.series_uid = "1.2.826.0.1.3680043.2.1125.99.2".into();
    small.series_number = 3;
    synth::write_slices(&dir.path().join("ct2"), &small, &synth::stored);
    let mut mr = Series::axial(4, 4, 9, 2.0, [0.0; 3]);
    mr.series_uid = "1.2.826.0.1.3680043.2.1125.99.3".into();
    mr.series_number = 4;
    mr.modality = "MR";
    synth::write_slices(&dir.path().join("mr"), &mr, &synth::stored);
    std::fs::write(dir.path().join("notes.txt"), "not DICOM").unwrap();
    let list = msd_io::dicom::list_series(dir.path()).unwrap();
    let summary: Vec<_> = list.iter().map(|s| (s.uid.as_str(), s.modality.as_str(), s.slices)).collect();
    assert_eq!(
        summary,
        vec![
            (big.series_uid.as_str(), "CT", 6),
            (small.series_uid.as_str(), "CT", 3),
            (mr.series_uid.as_str(), "MR", 9)
        ]
    );
    // Default: the CT series with the most slices, though the MR one has more.
    assert_eq!(msd_io::read_volume(dir.path()).unwrap().shape(), [6, 4, 4]);
    let opts = ReadOptions { series_uid: Some(small.series_uid.clone()), ..ReadOptions::default() };
    assert_eq!(msd_io::dicom::read_series(dir.path(), &opts).unwrap().volume.shape(), [3, 4, 4]);
    let opts = ReadOptions { series_uid: Some("9.9.9".into()), ..ReadOptions::default() };
    assert!(matches!(msd_io::dicom::read_series(dir.path(), &opts), Err(Error::Dicom { .. })));
}

#[test]
fn dicomdir_and_file_lists_read_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let s = Series::axial(4, 3, 4, 2.0, [1.0, 2.0, 3.0]);
    let files = synth::write_slices(&dir.path().join("DATA"), &s, &synth::stored);
    let dicomdir = synth::write_dicomdir(dir.path(), &files);
    let a = msd_io::read_volume(&dicomdir).unwrap();
    let b = msd_io::dicom::read_files(&files, &ReadOptions::default()).unwrap().volume;
    assert_eq!(a, b);
    assert_eq!(a.shape(), [4, 4, 3]);
}

#[test]
fn secondary_captures_are_not_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Series::axial(4, 4, 3, 2.0, [0.0; 3]);
    s.sop_class = "1.2.840.10008.5.1.4.1.1.7";
    synth::write_slices(dir.path(), &s, &synth::stored);
    let err = msd_io::read_volume(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotAVolume { .. }), "{err}");
    let list = msd_io::dicom::list_series(dir.path()).unwrap();
    assert!(list[0].not_a_volume.as_deref().unwrap().contains("Secondary Capture"));
}

#[test]
fn an_empty_folder_is_not_a_volume() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), "nothing here").unwrap();
    assert!(matches!(msd_io::dicom::read(dir.path()), Err(Error::NotAVolume { .. })));
}
