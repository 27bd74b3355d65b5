//! Many files in one command: directories walked with --recursive, outputs next to the
//! inputs or under --out-dir at the same relative paths, a bad file reported in one line
//! while the others are done, and the same bytes whether files are coded in one run, in
//! parallel, or in separate shards.

mod common;

use std::path::Path;

use common::Sandbox;

fn write_images(sb: &Sandbox) {
    std::fs::create_dir_all(sb.path("photos/trip")).unwrap();
    common::test_image(40, 30, 1)
        .save(sb.path("photos/a.png"))
        .unwrap();
    common::test_image(33, 21, 2)
        .save(sb.path("photos/trip/b.png"))
        .unwrap();
    common::test_image(50, 17, 3)
        .save(sb.path("photos/trip/c.bmp"))
        .unwrap();
    std::fs::write(sb.path("photos/notes.txt"), "not an image").unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read(sb: &Sandbox, name: &str) -> Vec<u8> {
    std::fs::read(sb.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_tree_is_coded_under_out_dir_and_decoded_back() {
    let sb = Sandbox::new();
    write_images(&sb);
    let out = sb.ddn(&[
        "compress",
        "photos",
        "-r",
        "--out-dir",
        "coded",
        "--layers",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["coded/a.ddn", "coded/trip/b.ddn", "coded/trip/c.ddn"] {
        assert!(sb.path(name).is_file(), "{name}");
    }
    assert!(!sb.path("coded/notes.ddn").exists());
    let out = sb.ddn(&["decompress", "coded", "-r", "--out-dir", "back"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let back = image::open(sb.path("back/trip/c.png")).unwrap();
    assert_eq!((back.width(), back.height()), (50, 17));
    // Without -f nothing is overwritten: every file fails, each in one line.
    let out = sb.ddn(&[
        "compress",
        "photos",
        "-r",
        "--out-dir",
        "coded",
        "--layers",
        "3",
    ]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert_eq!(
        text.lines().filter(|l| l.contains("exists")).count(),
        3,
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().contains("3 of 3 files failed"),
        "{text}"
    );
}

#[test]
fn a_bad_file_among_good_ones_is_reported_and_the_rest_are_done() {
    let sb = Sandbox::new();
    write_images(&sb);
    std::fs::write(sb.path("photos/broken.png"), b"\x89PNG garbage").unwrap();
    let out = sb.ddn(&[
        "compress",
        "photos/a.png",
        "photos/broken.png",
        "photos/trip/b.png",
        "--layers",
        "2",
    ]);
    assert!(!out.status.success());
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ddn: error: photos/broken.png: "),
        "{text}"
    );
    assert_eq!(lines[1], "ddn: error: 1 of 3 files failed");
    assert!(sb.path("photos/a.ddn").is_file() && sb.path("photos/trip/b.ddn").is_file());
    assert!(!sb.path("photos/broken.ddn").exists());
}

#[test]
fn parallel_jobs_and_separate_shards_make_the_same_files_as_one_run() {
    let sb = Sandbox::new();
    write_images(&sb);
    let args = ["photos", "-r", "--bpp", "0.8"];
    let run = |extra: &[&str]| {
        let mut all = vec!["compress"];
        all.extend(args);
        all.extend(extra);
        let out = sb.ddn(&all);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(&["--out-dir", "one"]);
    run(&["--out-dir", "parallel", "--jobs", "2"]);
    // Shards as separate processes, as xargs or GNU parallel would run them.
    for file in ["a.png", "trip/b.png", "trip/c.bmp"] {
        let dir = Path::new("shards").join(Path::new(file).parent().unwrap());
        let input = format!("photos/{file}");
        let out = sb.ddn(&[
            "compress",
            &input,
            "--out-dir",
            dir.to_str().unwrap(),
            "--bpp",
            "0.8",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for name in ["a.ddn", "trip/b.ddn", "trip/c.ddn"] {
        let one = read(&sb, &format!("one/{name}"));
        assert_eq!(one, read(&sb, &format!("parallel/{name}")), "{name}");
        assert_eq!(one, read(&sb, &format!("shards/{name}")), "{name}");
    }
}

#[test]
fn one_output_name_for_many_inputs_is_refused() {
    let sb = Sandbox::new();
    write_images(&sb);
    let out = sb.ddn(&[
        "compress",
        "photos/a.png",
        "photos/trip/b.png",
        "-o",
        "x.ddn",
    ]);
    common::assert_clean_failure(&out, "--out-dir");
    let out = sb.ddn(&["compress", "photos", "--layers", "2"]);
    common::assert_clean_failure(&out, "--recursive");
}
