//! The facade's public paths: every module and item that callers name through `msd::` resolves to
//! the crate that now holds it, and a picture's error reads as the workflow's error it always was.
#![allow(unused_imports)]

// One `use` per path the facade has always offered: a path that no longer resolves fails the build.
use msd::atomic::{write, write_text};
use msd::baseline::{
    DEFAULT_BONE_HU, connected_components, drop_small_components, engineers_recipe, keep_largest_component,
    threshold,
};
use msd::batch::{BatchOptions, Case, Manifest, find_cases, read_case_list, segment_batch};
use msd::evaluation::{EvaluationOptions, MESH_EXTENSIONS, Shape, is_mesh_path};
use msd::html::{HtmlCase, HtmlReport, MeshRole, cluster_vertices};
use msd::image::RgbImage;
use msd::loss_curve::{render, to_csv, write_csv, write_png};
use msd::preview::{
    Annotations, Overlay, Plane, PreviewOptions, REFERENCE_COLOUR, SEGMENTATION_COLOUR, label_centre,
    render_slice, write_previews,
};
use msd::render::{BONE_COLOUR, Figure, IMPLANT_COLOUR, Paint, View, render_mesh};
use msd::surface::SurfaceOptions;
use msd::training::{TrainingSet, mesh_to_labels, segment, segment_with, skull_train_config, train};
use msd::{Error, Result, error_chain, evaluate, surface};
use msd::{geom, io, metrics, net, phantom, pipeline, report};

#[test]
fn the_root_items_are_the_workflows() {
    // `msd::surface` is both the module and the function, as before.
    let _: fn(&io::LabelVolume) -> msd::Result<geom::Mesh> = msd::surface;
    let _: fn(&net::Model, &io::Volume<f32>) -> msd::Result<net::Segmentation> = msd::segment;
    let e = msd::Error::InvalidConfig { what: "no skull".into() };
    assert_eq!(msd::error_chain(&e), "invalid configuration: no skull");
    let _: &pipeline::Error = &e;
}

#[test]
fn a_pictures_error_is_the_same_workflow_error_as_before() {
    let head = phantom::generate(&phantom::PhantomConfig::quick(), 1).unwrap();
    let mut options = PreviewOptions::default();
    options.window_hu = (100.0, 100.0);
    let err = render_slice(&head.ct, Plane::Axial, None, &[], &options).unwrap_err();
    let text = error_chain(&err);
    let err: msd::Error = err.into();
    assert!(matches!(&err, msd::Error::InvalidConfig { .. }), "{err:?}");
    assert_eq!(error_chain(&err), text);
    // A file that cannot be written: the I/O error of the atomic writer, whichever crate wrote it.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/a.png");
    let err: msd::Error = RgbImage::filled(2, 2, [0, 0, 0]).write_png(&missing).unwrap_err().into();
    assert!(matches!(&err, msd::Error::Io(_)), "{err:?}");
    assert!(matches!(msd::atomic::write_text(&missing, "x"), Err(msd::Error::Io(_))));
}
