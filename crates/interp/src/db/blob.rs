//! Arrays stored as little-endian blobs (f32 activations, u32 ids and counts).

pub fn from_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn from_u32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// None when the blob's length is not a multiple of 4 (a damaged row).
pub fn to_f32(blob: &[u8]) -> Option<Vec<f32>> {
    blob.len().is_multiple_of(4).then(|| {
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

pub fn to_u32(blob: &[u8]) -> Option<Vec<u32>> {
    blob.len().is_multiple_of(4).then(|| {
        blob.chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// Column `index` of a row read as f32 values; a ragged blob is a conversion error, so a
/// damaged row fails its query instead of showing shifted values.
pub fn f32_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Vec<f32>> {
    let blob: Vec<u8> = row.get(index)?;
    to_f32(&blob).ok_or_else(|| ragged(index, blob.len()))
}

pub fn u32_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Vec<u32>> {
    let blob: Vec<u8> = row.get(index)?;
    to_u32(&blob).ok_or_else(|| ragged(index, blob.len()))
}

fn ragged(index: usize, len: usize) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Blob,
        format!("a blob of {len} bytes is not a whole number of 4-byte values").into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_ragged_blobs() {
        let v = [1.5f32, -0.0, f32::NAN, 3e-9];
        let back = to_f32(&from_f32(&v)).unwrap();
        assert_eq!(back.len(), 4);
        assert!(back.iter().zip(&v).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(to_u32(&from_u32(&[7, u32::MAX])).unwrap(), [7, u32::MAX]);
        assert!(to_f32(&[0, 1, 2]).is_none());
    }

    #[test]
    fn columns_refuse_ragged_blobs() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read = |blob: Vec<u8>| {
            conn.query_row("SELECT ?1", [blob], |r| {
                Ok((f32_column(r, 0), u32_column(r, 0)))
            })
            .unwrap()
        };
        let (f, u) = read(from_u32(&[1, 2]));
        assert_eq!(u.unwrap(), [1, 2]);
        assert_eq!(f.unwrap().len(), 2);
        let (f, u) = read(vec![0; 6]);
        assert!(f.unwrap_err().to_string().contains("6 bytes"));
        assert!(u.is_err());
    }
}
