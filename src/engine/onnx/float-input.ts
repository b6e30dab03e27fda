/**
 * Retypes one int64 graph input of an ONNX file as float32, by patching the serialized model in place.
 *
 * Legacy UNet exports (Optimum < 1.23) declare `timestep` int64, while diffusers' torch UNet takes the scheduler's
 * float timestep as it is: samplers with interpolated timesteps (Euler/Heun/DPM2/LMS with linspace spacing, DPM++ SDE
 * midpoints, …) give fractions such as 199.8 that an int64 input cannot carry. Such graphs only cast the timestep to
 * float (possibly after Expand/Unsqueeze), so fed as float32 they compute what the torch module computes. Whether the
 * retyped graph is valid is left to ONNX Runtime's type checking when the session is created; callers keep the
 * original graph when that fails.
 */

const INT64 = 7;
const FLOAT = 1;

interface Field {
  field: number;
  wire: number;
  /** Start and end of the payload (LEN: the bytes; varint: the varint itself). */
  start: number;
  end: number;
}

function readVarint(buf: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value, next: pos };
    scale *= 128;
  }
}

/** The top-level fields of one protobuf message in buf[start, end). */
function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const key = readVarint(buf, pos);
    const field = Math.floor(key.value / 8);
    const wire = key.value % 8;
    pos = key.next;
    if (wire === 0) {
      const v = readVarint(buf, pos);
      yield { field, wire, start: pos, end: v.next };
      pos = v.next;
    } else if (wire === 2) {
      const len = readVarint(buf, pos);
      yield { field, wire, start: len.next, end: len.next + len.value };
      pos = len.next + len.value;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
    if (pos > end) throw new Error('truncated protobuf message');
  }
}

function child(buf: Uint8Array, parent: Field, field: number): Field | undefined {
  for (const f of fields(buf, parent.start, parent.end)) if (f.field === field && f.wire === 2) return f;
  return undefined;
}

/**
 * A copy of the model bytes with graph input `name` (and any value_info of that name) declared float32 instead of
 * int64; null when the file has no such int64 input.
 */
export function retypeInt64InputAsFloat(model: Uint8Array, name: string): Uint8Array | null {
  const graph = [...fields(model, 0, model.length)].find((f) => f.field === 7 && f.wire === 2); // ModelProto.graph
  if (!graph) return null;
  const wanted = new TextEncoder().encode(name);
  const offsets: number[] = [];
  for (const f of fields(model, graph.start, graph.end)) {
    if (f.wire !== 2 || (f.field !== 11 && f.field !== 13)) continue; // GraphProto.input / value_info
    const nameField = child(model, f, 1); // ValueInfoProto.name
    if (!nameField || nameField.end - nameField.start !== wanted.length) continue;
    if (!wanted.every((b, i) => model[nameField.start + i] === b)) continue;
    const type = child(model, f, 2); // ValueInfoProto.type
    const tensor = type && child(model, type, 1); // TypeProto.tensor_type
    if (!tensor) continue;
    for (const e of fields(model, tensor.start, tensor.end)) {
      // TypeProto.Tensor.elem_type: a one-byte varint either way, so the patch keeps every length as it is
      if (e.field === 1 && e.wire === 0 && e.end - e.start === 1 && model[e.start] === INT64) offsets.push(e.start);
    }
  }
  if (offsets.length === 0) return null;
  const out = new Uint8Array(model);
  for (const o of offsets) out[o] = FLOAT;
  return out;
}
