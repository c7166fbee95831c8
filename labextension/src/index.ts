/**
 * cellpipe's JupyterLab extension: the pipeline side panel and the cells' step badges.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { trackBadges } from './badges';
import { CellpipePanel, PANEL_ID } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="8" y="2" width="8" height="5" rx="1.5"/>
    <rect x="2" y="17" width="8" height="5" rx="1.5"/>
    <rect x="14" y="17" width="8" height="5" rx="1.5"/>
    <path d="M11.25 7h1.5v4.25H18a1 1 0 0 1 1 1V17h-1.5v-4.25h-11V17H5v-4.75a1 1 0 0 1 1-1h5.25z"/>
  </g>
</svg>`;

export const cellpipeIcon = new LabIcon({ name: 'cellpipe:pipeline', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@cellpipe/labextension:panel',
  description: 'The cellpipe side panel: steps, DAG, annotations, runs and metrics.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new CellpipePanel(tracker);
    panel.title.icon = cellpipeIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    tracker.widgetAdded.connect((_, notebook) => trackBadges(notebook));
    tracker.forEach(notebook => trackBadges(notebook));

    app.commands.addCommand('cellpipe:open-panel', {
      label: 'Show the cellpipe pipeline panel',
      execute: () => app.shell.activateById(PANEL_ID)
    });
    app.commands.addCommand('cellpipe:run', {
      label: 'Run the notebook as a cellpipe pipeline',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => panel.startRun()
    });
    app.commands.addCommand('cellpipe:refresh', {
      label: 'Analyze the notebook again (cellpipe)',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => panel.refresh()
    });
    for (const command of ['cellpipe:open-panel', 'cellpipe:run', 'cellpipe:refresh']) {
      palette?.addItem({ command, category: 'cellpipe' });
    }
  }
};

export default plugin;
