/**
 * Where the Target setting can send the pipeline, as the server's GET /cellpipe/plugins
 * says: engines run it from the server (Run), cluster targets take it elsewhere (Compile,
 * Submit), each reached through the connection fields it declares (host, namespace, …).
 * Nothing here knows a target by name but the fallback, which says what a server older
 * than the plugins route offered.
 */
import * as api from './api';
import { describe } from './format';

export interface Destinations {
  engines: string[];
  submitTargets: string[];
  /** The connection fields of each submit target, as the target declares them. */
  connection: Record<string, api.ConnectionField[]>;
}

const field = (name: string, required = false, example = '', description = ''): api.ConnectionField => ({
  name,
  required,
  description,
  example
});

/** What a target that declares nothing reads (the server's DEFAULT_CONNECTION). */
const UNDECLARED: api.ConnectionField[] = [field('host'), field('experiment'), field('namespace')];

/** A server without GET /cellpipe/plugins: its built-in engines and targets, as they were. */
export const FALLBACK_DESTINATIONS: Destinations = {
  engines: ['local', 'docker'],
  submitTargets: ['argo', 'kfp'],
  connection: {
    argo: [field('namespace', false, 'pipelines')],
    kfp: [field('host', true, 'http://kfp.local:8888'), field('experiment'), field('namespace')]
  }
};

/** The server's engines and cluster targets; the built-in ones when it cannot say. */
export async function loadDestinations(): Promise<Destinations> {
  try {
    const found = await api.plugins();
    return {
      engines: found.engines,
      submitTargets: found.submit_targets,
      // a server from before the targets declared their connection gave each the same
      connection:
        found.connection ??
        Object.fromEntries(
          found.submit_targets.map(name => [name, FALLBACK_DESTINATIONS.connection[name] ?? UNDECLARED])
        )
    };
  } catch (error) {
    console.warn(`cellpipe: no GET /cellpipe/plugins (${describe(error)}); offering the built-in engines and targets`);
    return FALLBACK_DESTINATIONS;
  }
}

/** The engine Run uses for the Target setting: the setting when it names one, else local. */
export function engineFor(setting: string | undefined, where: Destinations): string {
  return setting !== undefined && where.engines.includes(setting) ? setting : 'local';
}

/** The cluster target the Target setting names, if it names one. */
export function submitTargetFor(setting: string | undefined, where: Destinations): string | null {
  return setting !== undefined && where.submitTargets.includes(setting) ? setting : null;
}

/** One input of the settings form for a connection field some targets read. */
export interface ConnectionInput {
  name: string;
  label: string;
  placeholder: string;
  title: string;
  targets: string[];
}

/**
 * The connection fields of every submit target, in the order they are first declared,
 * each labeled with the targets that read it ("KFP host" when only kfp does).
 */
export function connectionInputs(where: Destinations): ConnectionInput[] {
  const inputs = new Map<string, { fields: api.ConnectionField[]; targets: string[]; required: string[] }>();
  for (const target of where.submitTargets) {
    for (const declared of where.connection[target] ?? []) {
      const input = inputs.get(declared.name) ?? { fields: [], targets: [], required: [] };
      input.fields.push(declared);
      input.targets.push(target);
      if (declared.required) {
        input.required.push(target);
      }
      inputs.set(declared.name, input);
    }
  }
  return [...inputs.entries()].map(([name, { fields, targets, required }]) => {
    const example = fields.find(f => f.example)?.example;
    const description = fields.find(f => f.description)?.description ?? '';
    const needed = required.length ? `required by ${required.join(', ')}` : '';
    return {
      name,
      label:
        targets.length === 1
          ? `${targets[0].toUpperCase()} ${name}`
          : `${name[0].toUpperCase()}${name.slice(1)} (${targets.join(', ')})`,
      placeholder: example ? `e.g. ${example}` : '',
      title: [description, needed].filter(Boolean).join(' — '),
      targets
    };
  });
}
