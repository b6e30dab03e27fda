/**
 * ONNX Runtime sessions for one model component, with the component's I/O read from the file itself (names, element
 * types, ranks), so the engine adapts to each exporter generation instead of assuming one.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { retypeInt64InputAsFloat } from './float-input.js';
import { fromHalfBits, toHalfBits } from './float16.js';

export type Provider = 'cuda' | 'tensorrt' | 'cpu';

export interface IoSpec {
  name: string;
  type: string;
  /** Dimensions as the file declares them: numbers, or symbolic names for dynamic axes. */
  shape: readonly (number | string)[];
}

/** A value to feed: float data is converted to the input's declared dtype at the boundary. */
export type FeedValue =
  | { data: Float32Array; dims: readonly number[] }
  | { ints: readonly number[] | BigInt64Array | Int32Array; dims: readonly number[] };

export class ModelGraph {
  readonly inputs: ReadonlyMap<string, IoSpec>;
  readonly outputs: ReadonlyMap<string, IoSpec>;

  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
  ) {
    this.inputs = toSpecs(session.inputNames, session.inputMetadata);
    this.outputs = toSpecs(session.outputNames, session.outputMetadata);
  }

  static async load(path: string, providers: readonly Provider[] = ['cpu']): Promise<ModelGraph> {
    if (!existsSync(path)) throw new ModelFolderError(`missing file ${path}`);
    return ModelGraph.create(path, path, providers);
  }

  /**
   * Loads the graph with its int64 input `name` retyped as float32 (float-input.ts: legacy UNets' int64 timestep, so a
   * fractional timestep reaches the graph as diffusers' torch UNet sees it). Keeps the graph as it is when the input
   * is not int64, or when the retyped graph does not load (an op that needs the integer, or weights in external data,
   * which a graph loaded from bytes cannot find).
   */
  static async loadWithFloatInput(path: string, name: string, providers: readonly Provider[] = ['cpu']): Promise<ModelGraph> {
    const graph = await ModelGraph.load(path, providers);
    if (graph.inputs.get(name)?.type !== 'int64') return graph;
    let patched: Uint8Array | null = null;
    try {
      patched = retypeInt64InputAsFloat(readFileSync(path), name);
    } catch {
      patched = null; // not a protobuf this reader understands: keep the int64 graph
    }
    if (!patched) return graph;
    try {
      const retyped = await ModelGraph.create(path, patched, providers);
      await graph.release();
      return retyped;
    } catch {
      return graph;
    }
  }

  private static async create(path: string, source: string | Uint8Array, providers: readonly Provider[]): Promise<ModelGraph> {
    // onnxruntime-node throws instead of falling back when a provider's libraries are absent: try each in turn.
    let lastError: unknown;
    const chains = providers.includes('cpu') ? providers.map((_, i) => providers.slice(i)) : [[...providers, 'cpu']];
    for (const chain of chains) {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: chain as ort.InferenceSession.ExecutionProviderConfig[],
        graphOptimizationLevel: 'all',
      };
      try {
        const session = typeof source === 'string'
          ? await ort.InferenceSession.create(source, options)
          : await ort.InferenceSession.create(source, options);
        return new ModelGraph(path, session);
      } catch (e) {
        lastError = e;
      }
    }
    throw new ModelFolderError(`cannot load ${path}: ${(lastError as Error)?.message ?? String(lastError)}`);
  }

  has(input: string): boolean {
    return this.inputs.has(input);
  }

  input(name: string): IoSpec {
    const spec = this.inputs.get(name);
    if (!spec) throw new ModelFolderError(`${this.path}: expected an input named "${name}", found ${[...this.inputs.keys()].join(', ')}`);
    return spec;
  }

  requireOutput(name: string): IoSpec {
    const spec = this.outputs.get(name);
    if (!spec) throw new ModelFolderError(`${this.path}: expected an output named "${name}", found ${[...this.outputs.keys()].join(', ')}`);
    return spec;
  }

  /** Runs the graph; float outputs come back as float32 whatever the graph's dtype. */
  async run(feeds: Record<string, FeedValue>, outputNames?: readonly string[]): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, value] of Object.entries(feeds)) ortFeeds[name] = toTensor(this.input(name), value);
    const results = outputNames ? await this.session.run(ortFeeds, [...outputNames]) : await this.session.run(ortFeeds);
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.type === 'float32') out[name] = { data: t.data as Float32Array, dims: t.dims };
      else if (t.type === 'float16') out[name] = { data: fromHalfBits(t.data as Uint16Array), dims: t.dims };
      // Integer outputs (e.g. a VQ decoder's codebook indices) come back as numbers too; int64 arrives as BigInt.
      else out[name] = { data: Float32Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)), dims: t.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';
}

function toSpecs(names: readonly string[], meta: readonly ort.InferenceSession.ValueMetadata[]): Map<string, IoSpec> {
  const m = new Map<string, IoSpec>();
  names.forEach((name, i) => {
    const md = meta[i];
    if (md && md.isTensor) m.set(name, { name, type: md.type, shape: md.shape });
    else m.set(name, { name, type: 'unknown', shape: [] });
  });
  return m;
}

function toTensor(spec: IoSpec, value: FeedValue): ort.Tensor {
  // A rank-0 input gets a scalar whatever dims the caller passed (e.g. Optimum's float32 rank-0 timestep).
  const dims = spec.shape.length === 0 ? [] : [...value.dims];
  if ('data' in value) {
    switch (spec.type) {
      case 'float32':
        return new ort.Tensor('float32', value.data, dims);
      case 'float16':
        return new ort.Tensor('float16', toHalfBits(value.data), dims);
      case 'int64':
        return new ort.Tensor('int64', BigInt64Array.from(value.data, (v) => BigInt(Math.round(v))), dims);
      case 'int32':
        return new ort.Tensor('int32', Int32Array.from(value.data, (v) => Math.round(v)), dims);
      default:
        throw new ModelFolderError(`input "${spec.name}" has unsupported element type ${spec.type}`);
    }
  }
  const ints = value.ints;
  switch (spec.type) {
    case 'int64':
      return new ort.Tensor('int64', ints instanceof BigInt64Array ? ints : BigInt64Array.from(ints as ArrayLike<number>, (v) => BigInt(v)), dims);
    case 'int32':
      return new ort.Tensor('int32', ints instanceof Int32Array ? ints : Int32Array.from(ints as ArrayLike<number | bigint>, (v) => Number(v)), dims);
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(ints as ArrayLike<number | bigint>, (v) => Number(v)), dims);
    case 'float16':
      return new ort.Tensor('float16', toHalfBits(Float32Array.from(ints as ArrayLike<number | bigint>, (v) => Number(v))), dims);
    default:
      throw new ModelFolderError(`input "${spec.name}" has unsupported element type ${spec.type}`);
  }
}
