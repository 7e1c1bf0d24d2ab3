// Weights of an optimized model that passes derived from trained ones (IRParam.derive): batchnorm folded into
// the kernel and bias of the layer before it; LoRA adapters merged into the kernels they adapt. Computed once, when the model is loaded for inference.
import * as tf from "@tensorflow/tfjs-core";
import type { AttrValue } from "../compiler/ir/types.js";

let made = 0;

export interface DerivableParam {
  name: string;
  shape: readonly number[];
  derive?: { fn: string; args: Record<string, AttrValue> };
}

/**
 * The weights of `params` from `source` (the unoptimized model's weights by name): the same variables where
 * nothing is derived, new ones where it is. Dispose the new ones with `disposeDerived`.
 */
export function deriveWeights(params: readonly DerivableParam[], source: ReadonlyMap<string, tf.Variable>): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  const get = (name: AttrValue | undefined): tf.Tensor | null => {
    if (name === null || name === undefined) return null;
    const t = source.get(String(name));
    if (!t) throw new Error(`derived weight: no source weight "${String(name)}"`);
    return t;
  };
  for (const p of params) {
    if (!p.derive) {
      const t = source.get(p.name);
      if (!t) throw new Error(`no weight "${p.name}"`);
      out.set(p.name, t);
      continue;
    }
    const a = p.derive.args;
    const value = tf.tidy(() => {
      // LoRA merged: kernel [in, out] + scale · lora_a [in, r] · lora_b [r, out].
      if (p.derive!.fn === "merge_lora") return tf.add(get(a.kernel)!, tf.mul(tf.matMul(get(a.a)!, get(a.b)!), a.scale as number));
      // s = gamma / sqrt(variance + epsilon), per output channel.
      const s = tf.div(get(a.gamma) ?? tf.onesLike(get(a.variance)!), tf.sqrt(tf.add(get(a.variance)!, a.epsilon as number)));
      if (p.derive!.fn === "fold_bn_kernel") {
        const k = get(a.kernel)!;
        // A depthwise kernel [kh, kw, in, multiplier] has output channel c·multiplier + m.
        const scale = a.depthwise ? tf.reshape(s, [k.shape[2]!, k.shape[3]!]) : s;
        return tf.mul(k, scale);
      }
      if (p.derive!.fn === "fold_bn_bias") {
        const bias = get(a.bias) ?? tf.zerosLike(s);
        const beta = get(a.beta) ?? tf.zerosLike(s);
        return tf.add(tf.mul(tf.sub(bias, get(a.mean)!), s), beta);
      }
      throw new Error(`unknown derivation "${p.derive!.fn}" for ${p.name}`);
    });
    if (value.shape.join(",") !== p.shape.join(",")) throw new Error(`derived weight ${p.name} has shape [${value.shape}], not [${p.shape}]`);
    out.set(p.name, tf.variable(value, false, `${p.name}:derived:${++made}`));
    value.dispose();
  }
  return out;
}

/** Dispose the variables deriveWeights made (not the ones it passed through). */
export function disposeDerived(derived: ReadonlyMap<string, tf.Variable>, source: ReadonlyMap<string, tf.Variable>): void {
  for (const [k, v] of derived) if (source.get(k) !== v) v.dispose();
}
