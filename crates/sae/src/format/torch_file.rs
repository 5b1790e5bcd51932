//! Tensors from `torch.save` files (PyTorch ≥ 1.6 zip layout), as dictionary_learning writes
//! its `ae.pt`.
//!
//! The file is a zip archive of stored entries: `<name>/data.pkl` is a pickle of the saved
//! object in which every tensor is a call to `torch._utils._rebuild_tensor_v2` on a storage
//! named by a persistent id `("storage", torch.<Type>Storage, key, location, numel)`; the
//! storage's raw little-endian bytes are the entry `<name>/data/<key>`. This reader runs the
//! part of the pickle machine that state dicts, training backups (optimizer state, configs)
//! and plain containers use, and builds no Python objects it does not understand: any other
//! call is kept as an opaque value. Integer tensors (a TopK dictionary's 0-dim `k`) are read
//! like float ones. Nothing is ever printed; every failure is an error naming the file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Result, SaeError};

/// Element types of torch storages, by the pickled class name (`torch.FloatStorage`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDtype {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => StorageDtype::F64,
            "FloatStorage" => StorageDtype::F32,
            "HalfStorage" => StorageDtype::F16,
            "BFloat16Storage" => StorageDtype::BF16,
            "LongStorage" => StorageDtype::I64,
            "IntStorage" => StorageDtype::I32,
            "ShortStorage" => StorageDtype::I16,
            "CharStorage" => StorageDtype::I8,
            "ByteStorage" => StorageDtype::U8,
            "BoolStorage" => StorageDtype::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            StorageDtype::F64 | StorageDtype::I64 => 8,
            StorageDtype::F32 | StorageDtype::I32 => 4,
            StorageDtype::F16 | StorageDtype::BF16 | StorageDtype::I16 => 2,
            StorageDtype::I8 | StorageDtype::U8 | StorageDtype::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(
            self,
            StorageDtype::F64 | StorageDtype::F32 | StorageDtype::F16 | StorageDtype::BF16
        )
    }

    /// Element `i` of little-endian bytes, as f64 (exact for every type but i64 beyond 2^53).
    fn get(self, bytes: &[u8], i: usize) -> f64 {
        let s = self.size();
        let b = &bytes[i * s..(i + 1) * s];
        match self {
            StorageDtype::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            StorageDtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            StorageDtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
            StorageDtype::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            StorageDtype::I64 => {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64
            }
            StorageDtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            StorageDtype::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            StorageDtype::I8 => b[0] as i8 as f64,
            StorageDtype::U8 | StorageDtype::Bool => b[0] as f64,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Storage {
    pub dtype: StorageDtype,
    pub key: String,
    pub numel: usize,
}

/// A tensor as pickled: a strided view of a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: Storage,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The pickled objects this reader knows; anything else is an `Object`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global {
        module: String,
        name: String,
    },
    Storage(Storage),
    Tensor(TensorRef),
    /// The result of a call this reader does not model (kept so the rest can be read).
    Object,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global { .. } => "a class",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Object => "an object",
        }
    }

    /// The value under string key `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find_map(|(k, v)| match k {
                Value::Str(s) if s == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// An opened `torch.save` file: the unpickled object and access to its storages.
pub struct TorchFile {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
    /// `<name>/` of `<name>/data.pkl`.
    prefix: String,
    root: Value,
}

impl TorchFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| SaeError::io(path, e))?;
        let bad = |message: String| SaeError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let mut archive = match zip::ZipArchive::new(BufReader::new(file)) {
            Ok(a) => a,
            Err(e) => {
                let mut head = [0u8; 2];
                let legacy = File::open(path)
                    .and_then(|mut f| f.read_exact(&mut head))
                    .is_ok()
                    && head[0] == 0x80;
                return Err(bad(if legacy {
                    "written in torch.save's legacy (pre-1.6) format; load it in PyTorch and \
                     save it again with torch.save to get the zip format"
                        .into()
                } else {
                    format!(
                        "not a zip archive as torch.save writes ({e}); the file may be truncated"
                    )
                }));
            }
        };
        let pkl_name = archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .filter(|n| n.ends_with("data.pkl"))
            .min_by_key(|n| n.len())
            .ok_or_else(|| bad("the archive holds no `data.pkl`".into()))?;
        let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
        let pickle = read_entry(&mut archive, &pkl_name).map_err(&bad)?;
        let root = Unpickler::new(&pickle)
            .run()
            .map_err(|e| bad(format!("{pkl_name}: {e}")))?;
        Ok(TorchFile {
            path: path.to_path_buf(),
            archive,
            prefix,
            root,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Elements of a tensor in row-major order, as f64.
    pub fn read(&mut self, t: &TensorRef) -> Result<Vec<f64>> {
        let entry = format!("{}data/{}", self.prefix, t.storage.key);
        let bytes =
            read_entry(&mut self.archive, &entry).map_err(|message| SaeError::Checkpoint {
                path: self.path.clone(),
                message,
            })?;
        let size = t.storage.dtype.size();
        let available = (bytes.len() / size).min(t.storage.numel);
        let count: usize = t.shape.iter().product();
        if t.stride.len() != t.shape.len() {
            return Err(self.bad(format!(
                "tensor in storage {entry} has shape {:?} but strides {:?}",
                t.shape, t.stride
            )));
        }
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .map(|(&n, &s)| n.saturating_sub(1).saturating_mul(s))
            .try_fold(t.offset, |acc, x| acc.checked_add(x));
        match last {
            Some(last) if count == 0 || last < available => {}
            _ => {
                return Err(self.bad(format!(
                "tensor of shape {:?} reads past the end of storage {entry} ({available} elements)",
                t.shape
            )))
            }
        }
        let mut out = Vec::with_capacity(count);
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..count {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            out.push(t.storage.dtype.get(&bytes, at));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(out)
    }

    fn bad(&self, message: String) -> SaeError {
        SaeError::Checkpoint {
            path: self.path.clone(),
            message,
        }
    }
}

fn read_entry(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    name: &str,
) -> std::result::Result<Vec<u8>, String> {
    let mut entry = archive
        .by_name(name)
        .map_err(|e| format!("entry `{name}`: {e}"))?;
    let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 30));
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("entry `{name}` cannot be read ({e}); the file may be truncated"))?;
    Ok(bytes)
}

/// Deepest nesting of pickled containers accepted (Python's own recursion limit): the values
/// are cloned, compared and dropped recursively, and a deeper pickle would overflow the stack.
const MAX_DEPTH: u32 = 1000;
/// Most values a pickle may build (a torch state dict holds a few dozen), counting copies
/// made from its memo: a few dozen nested copies of copies would otherwise need more memory
/// than any machine has.
const MAX_VALUES: u64 = 1 << 20;

/// Nesting depth and number of values of one value on the pickle stack.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Shape {
    depth: u32,
    size: u64,
}

impl Shape {
    const LEAF: Shape = Shape { depth: 1, size: 1 };

    /// A container holding values of these shapes.
    fn around(items: impl IntoIterator<Item = Shape>) -> Shape {
        items.into_iter().fold(Shape::LEAF, |acc, s| Shape {
            depth: acc.depth.max(s.depth.saturating_add(1)),
            size: acc.size.saturating_add(s.size),
        })
    }
}

/// The pickle machine, for the opcodes of protocols 2–5 that `torch.save` emits.
struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// The shape of each value of `stack`.
    shapes: Vec<Shape>,
    /// Positions in `stack` where each open MARK began.
    marks: Vec<usize>,
    memo: HashMap<u64, (Value, Shape)>,
    /// Values built so far, copies included.
    built: u64,
}

type PResult<T> = std::result::Result<T, String>;

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8]) -> Self {
        Unpickler {
            data,
            pos: 0,
            stack: Vec::new(),
            shapes: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            built: 0,
        }
    }

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("pickle ends early at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> PResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> PResult<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> PResult<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    fn line(&mut self) -> PResult<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("pickle ends early at byte {}", self.pos))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> PResult<String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a pickled string is not UTF-8".to_string())
    }

    /// Counts `shape.size` new values against `MAX_VALUES`, and the depth against `MAX_DEPTH`.
    fn count(&mut self, shape: Shape) -> PResult<()> {
        if shape.depth > MAX_DEPTH {
            return Err(format!(
                "pickle nests containers deeper than {MAX_DEPTH} levels"
            ));
        }
        self.built = self.built.saturating_add(shape.size);
        if self.built > MAX_VALUES {
            return Err(format!("pickle builds more than {MAX_VALUES} values"));
        }
        Ok(())
    }

    /// Pushes a value built from scratch (its own node only is new).
    fn push(&mut self, v: Value, shape: Shape) -> PResult<()> {
        self.count(Shape {
            depth: shape.depth,
            size: 1,
        })?;
        self.stack.push(v);
        self.shapes.push(shape);
        Ok(())
    }

    fn leaf(&mut self, v: Value) -> PResult<()> {
        self.push(v, Shape::LEAF)
    }

    /// Pushes a copy: every value in it is new.
    fn push_copy(&mut self, v: Value, shape: Shape) -> PResult<()> {
        self.count(shape)?;
        self.stack.push(v);
        self.shapes.push(shape);
        Ok(())
    }

    fn pop_shaped(&mut self) -> PResult<(Value, Shape)> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pickle pops past a mark".into());
        }
        match (self.stack.pop(), self.shapes.pop()) {
            (Some(v), Some(s)) => Ok((v, s)),
            _ => Err("pickle pops an empty stack".to_string()),
        }
    }

    fn pop(&mut self) -> PResult<Value> {
        Ok(self.pop_shaped()?.0)
    }

    /// The top value and its shape, to add items to.
    fn top(&mut self) -> PResult<(&mut Value, &mut Shape)> {
        match (self.stack.last_mut(), self.shapes.last_mut()) {
            (Some(v), Some(s)) => Ok((v, s)),
            _ => Err("pickle reads an empty stack".to_string()),
        }
    }

    /// Adds to the top container's shape the items just put in it (counted when built).
    fn grow_top(&mut self, items: &[Shape]) -> PResult<()> {
        let (_, top) = self.top()?;
        for item in items {
            top.depth = top.depth.max(item.depth.saturating_add(1));
            top.size = top.size.saturating_add(item.size);
        }
        let depth = top.depth;
        self.count(Shape { depth, size: 0 })
    }

    fn pop_mark(&mut self) -> PResult<(Vec<Value>, Vec<Shape>)> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| "pickle closes a mark it never opened".to_string())?;
        Ok((self.stack.split_off(m), self.shapes.split_off(m)))
    }

    fn memo_put(&mut self, i: u64) -> PResult<()> {
        let (v, shape) = self.top()?;
        let (v, shape) = (v.clone(), *shape);
        self.count(shape)?;
        self.memo.insert(i, (v, shape));
        Ok(())
    }

    fn memo_get(&mut self, i: u64) -> PResult<()> {
        let (v, shape) = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| format!("pickle refers to memo entry {i}, never stored"))?;
        self.push_copy(v, shape)
    }

    fn run(mut self) -> PResult<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.leaf(Value::None)?,
                0x88 => self.leaf(Value::Bool(true))?,
                0x89 => self.leaf(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.leaf(Value::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.leaf(Value::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.leaf(Value::Int(v as i64))?;
                }
                0x8a => {
                    // LONG1: n bytes of little-endian two's complement
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        self.leaf(Value::Object)?;
                    } else {
                        let mut v: i64 = 0;
                        for (i, &byte) in b.iter().enumerate() {
                            v |= (byte as i64) << (8 * i);
                        }
                        if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                            v -= 1i64 << (8 * n);
                        }
                        self.leaf(Value::Int(v))?;
                    }
                }
                b'I' => {
                    // INT (protocol 0): decimal digits, "00"/"01" for False/True
                    let s = self.line()?;
                    let v = match s.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(s.trim().parse().map_err(|_| format!("bad INT {s:?}"))?),
                    };
                    self.leaf(v)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    self.leaf(Value::Float(v))?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.leaf(Value::Str(s))?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.leaf(Value::Str(s))?;
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "string too long")?;
                    let s = self.text(n)?;
                    self.leaf(Value::Str(s))?;
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(b))?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(b))?;
                }
                0x8e => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "bytes too long")?;
                    let b = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(b))?;
                }
                b')' => self.leaf(Value::Tuple(Vec::new()))?,
                b't' => {
                    let (items, shapes) = self.pop_mark()?;
                    self.push(Value::Tuple(items), Shape::around(shapes))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n
                        || self.marks.last().is_some_and(|&m| m > self.stack.len() - n)
                    {
                        return Err("pickle builds a tuple from too few values".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let shapes = self.shapes.split_off(self.shapes.len() - n);
                    self.push(Value::Tuple(items), Shape::around(shapes))?;
                }
                b']' => self.leaf(Value::List(Vec::new()))?,
                b'l' => {
                    let (items, shapes) = self.pop_mark()?;
                    self.push(Value::List(items), Shape::around(shapes))?;
                }
                b'}' => self.leaf(Value::Dict(Vec::new()))?,
                b'd' => {
                    let (items, shapes) = self.pop_mark()?;
                    self.push(Value::Dict(pairs(items)?), Shape::around(shapes))?;
                }
                0x8f => self.leaf(Value::Object)?, // EMPTY_SET
                0x90 => {
                    self.pop_mark()?; // ADDITEMS: the set stays opaque
                }
                0x91 => {
                    self.pop_mark()?; // FROZENSET
                    self.leaf(Value::Object)?;
                }
                b'a' => {
                    let (v, shape) = self.pop_shaped()?;
                    if let (Value::List(items), _) = self.top()? {
                        items.push(v);
                    }
                    self.grow_top(&[shape])?;
                }
                b'e' => {
                    let (vs, shapes) = self.pop_mark()?;
                    if let (Value::List(items), _) = self.top()? {
                        items.extend(vs);
                    }
                    self.grow_top(&shapes)?;
                }
                b's' => {
                    let (v, vs) = self.pop_shaped()?;
                    let (k, ks) = self.pop_shaped()?;
                    if let (Value::Dict(items), _) = self.top()? {
                        items.push((k, v));
                    }
                    self.grow_top(&[ks, vs])?;
                }
                b'u' => {
                    let (items, shapes) = self.pop_mark()?;
                    let kvs = pairs(items)?;
                    if let (Value::Dict(items), _) = self.top()? {
                        items.extend(kvs);
                    }
                    self.grow_top(&shapes)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.leaf(Value::Global { module, name })?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.leaf(Value::Global { module, name })?
                        }
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.leaf(persistent_load(pid)?)?;
                }
                b'R' => {
                    let (args, a) = self.pop_shaped()?;
                    let (callable, c) = self.pop_shaped()?;
                    self.push(call(callable, args)?, Shape::around([a, c]))?;
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    self.pop()?;
                    self.pop()?;
                    self.leaf(Value::Object)?;
                }
                0x92 => {
                    // NEWOBJ_EX
                    self.pop()?;
                    self.pop()?;
                    self.pop()?;
                    self.leaf(Value::Object)?;
                }
                b'b' => {
                    // BUILD: object state (a state dict's `_metadata`, ...); not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'q' => {
                    let i = self.u8()? as u64;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()? as u64;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                b'p' => {
                    let s = self.line()?;
                    let i = s.parse().map_err(|_| format!("bad PUT {s:?}"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u64;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()? as u64;
                    self.memo_get(i)?;
                }
                b'g' => {
                    let s = self.line()?;
                    let i = s.parse().map_err(|_| format!("bad GET {s:?}"))?;
                    self.memo_get(i)?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let (v, shape) = self.top()?;
                    let (v, shape) = (v.clone(), *shape);
                    self.push_copy(v, shape)?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {}",
                        self.pos - 1
                    ))
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> PResult<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err("pickle sets a dict item without a value".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// `("storage", torch.<Type>Storage, key, location, numel)` → a storage.
fn persistent_load(pid: Value) -> PResult<Value> {
    let Value::Tuple(items) = pid else {
        return Err(format!("persistent id is {}, expected a tuple", pid.kind()));
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global { name, .. }, Value::Str(key), _, Value::Int(numel)]
            if tag == "storage" =>
        {
            let dtype = StorageDtype::from_class(name)
                .ok_or_else(|| format!("unsupported storage type `{name}`"))?;
            let numel = usize::try_from(*numel).map_err(|_| "negative storage size")?;
            Ok(Value::Storage(Storage {
                dtype,
                key: key.clone(),
                numel,
            }))
        }
        _ => Err("persistent id is not a torch storage".into()),
    }
}

fn int_tuple(v: &Value, what: &str) -> PResult<Vec<usize>> {
    match v {
        Value::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(format!("tensor {what} holds a non-size value")),
            })
            .collect(),
        _ => Err(format!("tensor {what} is {}, expected a tuple", v.kind())),
    }
}

/// The calls (`REDUCE`) that build containers and tensors; others become opaque objects.
fn call(callable: Value, args: Value) -> PResult<Value> {
    let Value::Global { module, name } = &callable else {
        return Ok(Value::Object);
    };
    let args = match args {
        Value::Tuple(a) => a,
        _ => return Ok(Value::Object),
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") => match args.into_iter().next() {
            None => Ok(Value::Dict(Vec::new())),
            Some(Value::List(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::Tuple(kv) if kv.len() == 2 => {
                            let mut kv = kv.into_iter();
                            if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                                out.push((k, v));
                            }
                        }
                        _ => return Ok(Value::Object),
                    }
                }
                Ok(Value::Dict(out))
            }
            Some(_) => Ok(Value::Object),
        },
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            // (storage, storage_offset, size, stride, ...)
            match args.as_slice() {
                [Value::Storage(storage), Value::Int(offset), size, stride, ..] => {
                    Ok(Value::Tensor(TensorRef {
                        storage: storage.clone(),
                        offset: usize::try_from(*offset).map_err(|_| "negative tensor offset")?,
                        shape: int_tuple(size, "size")?,
                        stride: int_tuple(stride, "stride")?,
                    }))
                }
                _ => Err(
                    "a tensor's rebuild arguments are not (storage, offset, size, stride)".into(),
                ),
            }
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => {
            Ok(args.into_iter().next().unwrap_or(Value::Object))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            // (func, type, args, state): the tensor is func(*args)
            let mut it = args.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(func), Some(_), Some(inner)) => call(func, inner),
                _ => Ok(Value::Object),
            }
        }
        _ => Ok(Value::Object),
    }
}

/// The state dict of an opened file: the top-level dict, or the one under `"ae"` in a
/// dictionary_learning training backup (`{"step", "ae", "optimizer", "config", ...}`).
pub struct StateDict {
    pub file: TorchFile,
    tensors: Vec<(String, TensorRef)>,
}

impl StateDict {
    pub fn open(path: &Path) -> Result<Self> {
        let file = TorchFile::open(path)?;
        let root = file.root();
        let dict = match root.get("ae") {
            Some(ae @ Value::Dict(_)) => ae,
            _ => root,
        };
        let Value::Dict(items) = dict else {
            return Err(SaeError::Checkpoint {
                path: path.to_path_buf(),
                message: format!("holds {}, expected a state dict", root.kind()),
            });
        };
        let tensors = items
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => Some((k.clone(), t.clone())),
                _ => None,
            })
            .collect();
        Ok(StateDict { file, tensors })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(k, _)| k.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensor(name).is_some()
    }

    fn tensor(&self, name: &str) -> Option<&TensorRef> {
        self.tensors.iter().find(|(k, _)| k == name).map(|(_, t)| t)
    }

    fn path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    /// Float tensor `name` as f32, checked against `shape` (`[]` for a 0-dim tensor).
    pub fn read_f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensor(name)
            .cloned()
            .ok_or_else(|| SaeError::MissingTensor {
                path: self.path(),
                name: name.to_string(),
            })?;
        if t.shape != shape {
            return Err(SaeError::TensorShape {
                path: self.path(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape,
            });
        }
        if !t.storage.dtype.is_float() {
            return Err(SaeError::TensorDtype {
                path: self.path(),
                name: name.to_string(),
                dtype: format!("{:?}", t.storage.dtype),
            });
        }
        Ok(self.file.read(&t)?.into_iter().map(|v| v as f32).collect())
    }

    /// A 1-dim integer tensor such as Matryoshka's `group_sizes`; `None` when absent.
    pub fn read_int_vec(&mut self, name: &str) -> Result<Option<Vec<i64>>> {
        let Some(t) = self.tensor(name).cloned() else {
            return Ok(None);
        };
        if t.shape.len() != 1 || t.storage.dtype.is_float() {
            return Err(SaeError::Checkpoint {
                path: self.path(),
                message: format!(
                    "tensor `{name}` is {:?} of shape {:?}, expected a list of integers",
                    t.storage.dtype, t.shape
                ),
            });
        }
        Ok(Some(
            self.file.read(&t)?.iter().map(|&v| v as i64).collect(),
        ))
    }

    /// A 0-dim (or one-element) integer tensor such as TopK's `k`; `None` when absent.
    pub fn read_int_scalar(&mut self, name: &str) -> Result<Option<i64>> {
        let Some(t) = self.tensor(name).cloned() else {
            return Ok(None);
        };
        if t.shape.iter().product::<usize>() != 1 || t.storage.dtype.is_float() {
            return Err(SaeError::Checkpoint {
                path: self.path(),
                message: format!(
                    "tensor `{name}` is {:?} of shape {:?}, expected one integer",
                    t.storage.dtype, t.shape
                ),
            });
        }
        Ok(self.file.read(&t)?.first().map(|&v| v as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpickle(body: &[u8]) -> PResult<Value> {
        let mut data = vec![0x80, 2];
        data.extend_from_slice(body);
        data.push(b'.');
        Unpickler::new(&data).run()
    }

    /// `depth` tuples, each wrapping the one before, around an empty list.
    fn nested(depth: usize) -> Vec<u8> {
        let mut body = vec![b']'];
        body.extend(std::iter::repeat_n(0x85u8, depth));
        body
    }

    #[test]
    fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
        let ok = unpickle(&nested(500)).unwrap();
        assert!(matches!(ok, Value::Tuple(_)));
        let err = unpickle(&nested(1_000_000)).unwrap_err();
        assert!(err.contains("deeper than 1000"), "{err}");
        // Nesting by appending into lists and dicts counts too.
        let mut body = vec![b']'; 2000];
        body.extend(std::iter::repeat_n(b'a', 1999));
        let err = unpickle(&body).unwrap_err();
        assert!(err.contains("deeper than 1000"), "{err}");
    }

    #[test]
    fn copies_of_copies_from_the_memo_are_bounded() {
        // Each round memoizes the top, fetches a copy and pairs the two: 2^n values.
        let mut body = vec![b']'];
        for i in 0..40u8 {
            body.extend_from_slice(&[0x94, b'h', i, 0x86]);
        }
        let err = unpickle(&body).unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn a_small_dict_reads() {
        let v = unpickle(b"}(\x8c\x01kK\x07u").unwrap();
        assert_eq!(v.get("k"), Some(&Value::Int(7)));
    }
}
