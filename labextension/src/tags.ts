/**
 * cellpipe's cell tags, read and written with the grammar of `cellpipe.core.annotations`:
 * `step:NAME`, `after:NAME`, `parameters`, `metrics`, `skip`, `gpu:N`, `cpu:N`,
 * `memory:SIZE`, `retries:N`, `timeout:S`, `image:REF`, `cache:off`, `inputs:PATH` and
 * `model:NAME` (one tag per path or model: tags hold no commas; the editor shows them
 * comma-separated). Kale's aliases
 * (`block:`, `prev:A:B`, `pipeline-parameters`, `pipeline-metrics`) are read too.
 */

export const SETTING_KEYS = [
  'gpu',
  'cpu',
  'memory',
  'retries',
  'timeout',
  'image',
  'inputs',
  'model'
] as const;
/** Settings that add up over a cell's tags, one tag per item (the editor joins them with commas). */
const LIST_SETTINGS: readonly SettingKey[] = ['inputs', 'model'];
export type SettingKey = (typeof SETTING_KEYS)[number];
export type Role = '' | 'parameters' | 'metrics' | 'skip';

export interface Annotation {
  step: string;
  after: string[];
  role: Role;
  settings: Partial<Record<SettingKey, string>>;
  /** `cache:off` (the only non-default cache setting worth a tag). */
  cacheOff: boolean;
}

/** A cell's annotation and the tags that are not cellpipe's (kept as they are). */
export interface ParsedTags {
  annotation: Annotation;
  other: string[];
}

const ROLE_TAGS: Record<string, Role> = {
  parameters: 'parameters',
  'pipeline-parameters': 'parameters',
  metrics: 'metrics',
  'pipeline-metrics': 'metrics',
  skip: 'skip'
};

export const STEP_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const QUANTITY = /^(\d+(\.\d+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/;
const DURATION = /^(\d+)(s|m|h)?$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER = /^\s*%%step\b([^\n]*)/;

export function emptyAnnotation(): Annotation {
  return { step: '', after: [], role: '', settings: {}, cacheOff: false };
}

/** Split a cell's tags into cellpipe's annotation and everything else. */
export function parseTags(tags: readonly string[]): ParsedTags {
  const annotation = emptyAnnotation();
  const other: string[] = [];
  for (const tag of tags) {
    const lowered = tag.toLowerCase();
    if (lowered in ROLE_TAGS) {
      annotation.role = ROLE_TAGS[lowered];
      continue;
    }
    const colon = tag.indexOf(':');
    const key = colon < 0 ? '' : tag.slice(0, colon).toLowerCase();
    const value = colon < 0 ? '' : tag.slice(colon + 1);
    if (key === 'step' || key === 'block') {
      annotation.step = value;
    } else if (key === 'after' || key === 'prev') {
      for (const name of value.split(':')) {
        if (name && !annotation.after.includes(name)) {
          annotation.after.push(name);
        }
      }
    } else if ((LIST_SETTINGS as readonly string[]).includes(key)) {
      const listKey = key as SettingKey;
      const earlier = annotation.settings[listKey];
      annotation.settings[listKey] = earlier ? `${earlier},${value}` : value;
    } else if ((SETTING_KEYS as readonly string[]).includes(key)) {
      annotation.settings[key as SettingKey] = value;
    } else if (key === 'cache') {
      annotation.cacheOff = ['off', 'false'].includes(value.toLowerCase());
    } else {
      other.push(tag); // imports, functions, limit:…, or a tag for something else
    }
  }
  return { annotation, other };
}

/** The tags that say `annotation`, after the cell's other tags. */
export function toTags(annotation: Annotation, other: readonly string[] = []): string[] {
  const tags = [...other];
  if (annotation.role) {
    tags.push(annotation.role);
  }
  if (annotation.step) {
    tags.push(`step:${annotation.step}`);
  }
  for (const name of annotation.after) {
    tags.push(`after:${name}`);
  }
  for (const key of SETTING_KEYS) {
    const value = annotation.settings[key];
    if (value === undefined || value === '') {
      continue;
    }
    if (LIST_SETTINGS.includes(key)) {
      for (const item of value.split(',').map(p => p.trim())) {
        if (item && !tags.includes(`${key}:${item}`)) {
          tags.push(`${key}:${item}`);
        }
      }
    } else {
      tags.push(`${key}:${value}`);
    }
  }
  if (annotation.cacheOff) {
    tags.push('cache:off');
  }
  return tags;
}

/** What is wrong with each field of `annotation` (field name → message); empty when valid. */
export function validate(annotation: Annotation): Record<string, string> {
  const problems: Record<string, string> = {};
  if (annotation.step && !STEP_NAME.test(annotation.step)) {
    problems.step = `"${annotation.step}" is not a valid step name: use lowercase letters, digits, - or _ (e.g. "${normalizeStepName(annotation.step)}")`;
  }
  const bad = annotation.after.filter(name => !STEP_NAME.test(name));
  if (bad.length) {
    problems.after = `not step names: ${bad.join(', ')}`;
  }
  const s = annotation.settings;
  for (const key of ['gpu', 'retries'] as const) {
    if (s[key] && !/^\d+$/.test(s[key]!)) {
      problems[key] = `${key} must be a whole number, e.g. ${key}:${key === 'gpu' ? 1 : 2}`;
    }
  }
  if (s.cpu && (!QUANTITY.test(s.cpu) || /[ikMGTP]$/.test(s.cpu))) {
    problems.cpu = 'give CPUs as a number or millicores, e.g. 2, 0.5 or 500m';
  }
  if (s.memory && (!QUANTITY.test(s.memory) || s.memory.endsWith('m'))) {
    problems.memory = 'give a Kubernetes quantity, e.g. 512Mi or 2Gi';
  }
  if (s.timeout && !DURATION.test(s.timeout)) {
    problems.timeout = 'give seconds, e.g. 600 (30m and 2h are accepted too)';
  }
  if (s.inputs !== undefined && s.inputs.split(',').some(p => /\s/.test(p.trim()))) {
    problems.inputs = 'paths are separated by commas and hold no spaces, e.g. data/*.csv,config.yaml';
  }
  if (s.model !== undefined) {
    const bad = s.model.split(',').map(n => n.trim()).filter(n => n && !IDENTIFIER.test(n));
    if (bad.length) {
      problems.model = `not variable names: ${bad.join(', ')} (name the variables that hold models, e.g. clf)`;
    }
  }
  if (s.image !== undefined && /\s/.test(s.image)) {
    problems.image = 'an image reference has no spaces, e.g. registry.local/team/train:1.0';
  }
  return problems;
}

/** A valid step name for `raw` (`Train Model` → `train-model`), as the analyzer suggests. */
export function normalizeStepName(raw: string): string {
  const name = raw
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '');
  return name.slice(0, 63).replace(/[-_]+$/g, '') || 'step';
}

/** The step a `%%step NAME …` header on the cell's first line names ('' if none). */
export function headerStep(source: string): string | null {
  const match = HEADER.exec(source);
  if (!match) {
    return null;
  }
  const words = match[1].trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '--after') {
      while (i + 1 < words.length && !words[i + 1].startsWith('--')) {
        i++;
      }
    } else if (words[i].startsWith('--')) {
      if (words[i] !== '--skip' && !words[i].includes('=')) {
        i++;
      }
    } else {
      return words[i];
    }
  }
  return '';
}

/** The short label of a cell's badge: its step, or its role; null for an untagged cell. */
export function badgeLabel(tags: readonly string[], source: string): string | null {
  const { annotation } = parseTags(tags);
  const header = headerStep(source);
  if (annotation.role === 'skip' || (header !== null && /(^|\s)--skip\b/.test(source.split('\n')[0]))) {
    return 'skip';
  }
  if (annotation.step) {
    return annotation.step;
  }
  if (header) {
    return header;
  }
  return annotation.role || null;
}
