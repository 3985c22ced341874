//! The generated images: a config naming the reference and platform, one
//! gzip'd tar layer and a manifest, deterministic and content-addressed.



use super::*;

pub(super) struct Built {
    pub(super) manifest: Vec<u8>,
    pub(super) media_type: &'static str,
    pub(super) blobs: Vec<(String, Vec<u8>)>,
    pub(super) size: u64,
}

/// A tiny image: a config blob naming the ref and platform (so every tag
/// and platform has its own digest), one gzip'd tar layer, a manifest.
pub(super) fn build_single(
    repo: &str,
    tag: &str,
    os: &str,
    arch: &str,
    variant: Option<&str>,
    oci: bool,
) -> Built {
    let reference = format!("{repo}:{tag}");
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let content = format!("pullfix sandbox image {reference} {platform}\n");
    let tar = tar_file("etc/pullfix-sandbox-image", content.as_bytes());
    let diff_id = sha256_digest(&tar);
    let layer = gzip_stored(&tar);
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": CREATED,
        "config": {
            "Cmd": ["/bin/true"],
            "Labels": {"io.pullfix.sandbox.ref": reference},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "pullfix sandbox registry"}],
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config = canonical(&config);
    let (media_type, config_type, layer_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    };
    let manifest = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config.len(), "digest": sha256_digest(&config)},
        "layers": [{"mediaType": layer_type, "size": layer.len(), "digest": sha256_digest(&layer)}],
    }));
    Built {
        manifest,
        media_type,
        size: (config.len() + layer.len()) as u64,
        blobs: vec![
            (sha256_digest(&config), config),
            (sha256_digest(&layer), layer),
        ],
    }
}

/// Compact JSON with sorted keys (serde_json's default map is sorted, and
/// `json!` objects are rebuilt through a `BTreeMap` to be sure).
pub(super) fn canonical(v: &Value) -> Vec<u8> {
    pub(super) fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).unwrap_or_default()
}

pub use pullfix::encoding::sha256_digest;

/// A one-file ustar archive (deterministic: fixed mtime, owner 0).
pub(super) fn tar_file(name: &str, content: &[u8]) -> Vec<u8> {
    pub(super) fn octal(field: &mut [u8], value: u64) {
        let width = field.len() - 1;
        let s = format!("{value:0width$o}");
        field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
        field[width] = 0;
    }
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], content.len() as u64);
    octal(&mut h[136..148], MTIME);
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}

/// gzip with stored (uncompressed) deflate blocks: valid, deterministic and
/// needing no compression crate.
pub(super) fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i == last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

pub(super) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
