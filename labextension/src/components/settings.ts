/**
 * The Pipeline settings section: `metadata.cellpipe` as a form (name, target, images,
 * and the connection fields the server's targets declare), saved into the notebook.
 *
 * The form is rebuilt only when what it offers changes (the server's targets and their
 * fields); otherwise it is patched, leaving alone the fields the user is in or typed in.
 */
import { h } from '../dom';
import { ConnectionInput, Destinations, connectionInputs } from '../destinations';
import { clearEdits, control, fieldValue, patchAttribute, patchValue, replaceForm, textField, trackEdits } from '../form';
import { CLUSTER_SETTINGS, PanelState, settingValue } from '../state';
import { Component } from './component';

/** The settings every target shares; each is kept as `metadata.cellpipe.<name>`. */
const PLAIN_SETTINGS = ['name', 'target', 'base_image', 'registry'];

export class SettingsComponent extends Component {
  protected select = (s: Readonly<PanelState>) => [
    s.notebook,
    s.settings,
    s.destinations,
    s.analysis?.pipeline?.name
  ];
  private form: HTMLFormElement | null = null;
  private formKey: string | null = null;
  private inputs: ConnectionInput[] = []; // the connection fields the form has

  render(s: Readonly<PanelState>): void {
    if (!s.notebook) {
      this.form = null;
      this.formKey = null;
      this.body.replaceChildren();
      return;
    }
    const target = s.settings.target ?? 'local';
    const { engines, submitTargets } = s.destinations;
    const offered = engines.includes(target) || submitTargets.includes(target);
    const inputs = connectionInputs(s.destinations);
    const key = JSON.stringify([engines, submitTargets, inputs, offered ? null : target]);
    if (!this.form || !this.form.isConnected || key !== this.formKey) {
      const next = this.build(s.destinations, inputs, offered ? null : target);
      replaceForm(this.form, next, this.body);
      this.form = next;
      this.formKey = key;
      this.inputs = inputs;
    }
    const form = this.form;
    const defaultName = s.analysis?.pipeline?.name;
    patchAttribute(control(form, 'name'), 'placeholder', typeof defaultName === 'string' ? defaultName : '');
    patchValue(control<HTMLSelectElement>(form, 'target'), target);
    for (const name of [...PLAIN_SETTINGS, ...inputs.map(input => input.name)]) {
      if (name !== 'target') {
        patchValue(control(form, name), settingValue(s.settings, name));
      }
    }
  }

  private build(where: Destinations, inputs: ConnectionInput[], unavailable: string | null): HTMLFormElement {
    const { engines, submitTargets } = where;
    const option = (name: string, label = name) => h('option', { value: name }, label);
    const form = h(
      'form',
      {
        className: 'cp-settings-form',
        'aria-label': 'pipeline settings',
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.save(form);
        },
        onfocusout: () => window.setTimeout(() => this.form === form && this.render(this.store.get()))
      },
      textField({ id: 'cp-setting-name', name: 'name', label: 'Pipeline name', value: '' }),
      h(
        'div',
        { className: 'cp-field' },
        h('label', { for: 'cp-setting-target' }, 'Target'),
        h(
          'select',
          { id: 'cp-setting-target', name: 'target', className: 'jp-mod-styled', 'aria-label': 'Target' },
          h('optgroup', { label: 'engines (Run)' }, ...engines.map(name => option(name))),
          h(
            'optgroup',
            { label: 'cluster targets (Compile, Submit)' },
            ...submitTargets.filter(name => !engines.includes(name)).map(name => option(name))
          ),
          // a name this server does not offer (a plugin not installed here) is kept, not
          // replaced by the first choice on the next save
          unavailable !== null ? option(unavailable, `${unavailable} (not available on this server)`) : null
        )
      ),
      textField({
        id: 'cp-setting-base_image',
        name: 'base_image',
        label: 'Base image',
        value: '',
        placeholder: 'e.g. python:3.11-slim'
      }),
      textField({
        id: 'cp-setting-registry',
        name: 'registry',
        label: `Registry (${submitTargets.join(', ')})`,
        value: '',
        placeholder: 'e.g. registry.local:5000/team'
      }),
      ...inputs.map(input =>
        textField({
          id: `cp-setting-${input.name}`,
          name: input.name,
          label: input.label,
          value: '',
          placeholder: input.placeholder,
          title: input.title
        })
      ),
      h(
        'div',
        { className: 'cp-form-actions' },
        h(
          'button',
          {
            type: 'submit',
            className: 'jp-Button jp-mod-accept cp-button cp-save-settings',
            'aria-label': 'Save the pipeline settings into the notebook'
          },
          'Save settings'
        )
      )
    );
    for (const input of inputs) {
      control(form, input.name)?.setAttribute('data-targets', input.targets.join(' '));
    }
    trackEdits(form);
    return form;
  }

  private save(form: HTMLFormElement): void {
    const nb = this.store.get().notebook;
    if (!nb) {
      return;
    }
    const s = { ...this.store.get().settings };
    const cluster = { ...((s.cluster ?? {}) as Record<string, unknown>) };
    for (const name of [...PLAIN_SETTINGS, ...this.inputs.map(input => input.name)]) {
      const kept = CLUSTER_SETTINGS.has(name) ? cluster : s;
      const value = fieldValue(form, name);
      if (value) {
        kept[name] = value;
      } else {
        delete kept[name];
      }
    }
    if (Object.keys(cluster).length) {
      s.cluster = cluster;
    } else {
      delete s.cluster;
    }
    (document.activeElement as HTMLElement | null)?.blur?.();
    clearEdits(form);
    nb.context.model.setMetadata('cellpipe', s);
    this.actions.setStatus('Pipeline settings saved in the notebook metadata (save the notebook to keep them).', 'success');
  }
}
