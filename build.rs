//! Build script: compiles the C helpers (`src/c/*.c`) and the OS layer's
//! private C pieces (`src/sys/c/*.c`) into the library and generates the C
//! header with cbindgen.
//!
//! Everything is written to `OUT_DIR`. The generated header's path is passed
//! to the crate as `LIBALLOC_GENERATED_HEADER`, so a test can compare it with the
//! checked-in `include/liballoc.h`; `make header` copies it there.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-changed=src/c");
    println!("cargo:rerun-if-changed=src/sys/c");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");

    // The C helpers. They include the generated header, so generate it first.
    let header = out.join("liballoc.h");
    generate_header(&root, &header);

    let mut build = cc::Build::new();
    build
        .include(&out)
        .flag("-std=c11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Wpedantic")
        .flag("-Werror")
        .flag("-fno-omit-frame-pointer");
    let mut sources: Vec<PathBuf> = ["src/c", "src/sys/c"]
        .iter()
        .flat_map(|dir| fs::read_dir(root.join(dir)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    for s in &sources {
        build.file(s);
    }
    // Linked whole-archive so every helper reaches liballoc.a and, through the
    // Makefile's version script, the exported symbols of liballoc.so.
    build.link_lib_modifier("+whole-archive");
    build.compile("la_helpers");

    println!(
        "cargo:rustc-env=LIBALLOC_GENERATED_HEADER={}",
        header.to_str().unwrap()
    );
}

fn generate_header(root: &PathBuf, header: &PathBuf) {
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let version = format!(
        "#define LA_VERSION_MAJOR {}\n#define LA_VERSION_MINOR {}\n#define LA_VERSION_PATCH {}\n#define LA_VERSION_STRING \"{}\"",
        env::var("CARGO_PKG_VERSION_MAJOR").unwrap(),
        env::var("CARGO_PKG_VERSION_MINOR").unwrap(),
        env::var("CARGO_PKG_VERSION_PATCH").unwrap(),
        env::var("CARGO_PKG_VERSION").unwrap(),
    );
    let helpers = fs::read_to_string(root.join("src/c/helpers.h")).unwrap();
    let mut config = config;
    config.after_includes = Some(format!(
        "{}\n\n{}",
        version,
        config.after_includes.clone().unwrap_or_default()
    ));
    config.trailer = Some(helpers);
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/liballoc.h")
        .write_to_file(header);
}
