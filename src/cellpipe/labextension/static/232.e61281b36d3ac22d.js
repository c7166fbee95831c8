"use strict";(self.rspackChunk_cellpipe_labextension=self.rspackChunk_cellpipe_labextension||[]).push([[232],{8475(e,p,r){var o=r(1601),a=r.n(o),c=r(6314),t=(r.n(c))()(a());t.push([e.id,`/*
 * cellpipe side panel. Colors come from JupyterLab's theme variables only, so the light
 * and the dark themes both work.
 */

.cp-panel {
  /* tints of the state colors over the theme's background: light in the light theme,
     dark in the dark theme, so the theme's font color stays readable on them */
  --cp-pending-fill: var(--jp-layout-color2);
  --cp-pending-stroke: var(--jp-border-color1);
  --cp-running-fill: color-mix(in srgb, var(--jp-info-color1) 28%, var(--jp-layout-color1));
  --cp-running-stroke: var(--jp-info-color1);
  --cp-succeeded-fill: color-mix(in srgb, var(--jp-success-color1) 28%, var(--jp-layout-color1));
  --cp-succeeded-stroke: var(--jp-success-color1);
  --cp-cached-fill: color-mix(in srgb, var(--jp-success-color1) 10%, var(--jp-layout-color1));
  --cp-cached-stroke: var(--jp-success-color1);
  --cp-failed-fill: color-mix(in srgb, var(--jp-error-color1) 28%, var(--jp-layout-color1));
  --cp-failed-stroke: var(--jp-error-color1);
  --cp-skipped-fill: var(--jp-layout-color3);
  --cp-skipped-stroke: var(--jp-border-color2);

  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  padding: 8px 10px 16px;
  box-sizing: border-box;
  min-width: 240px;
}

.cp-panel .cp-title {
  font-size: var(--jp-ui-font-size2);
  font-weight: 600;
  margin: 0 0 2px;
  text-transform: uppercase;
  letter-spacing: 0.04em;
}

.cp-panel .cp-notebook {
  color: var(--jp-ui-font-color2);
  word-break: break-all;
}

.cp-panel .cp-summary {
  margin-top: 2px;
  color: var(--jp-ui-font-color2);
}

.cp-panel .cp-error,
.cp-panel .cp-summary.cp-error {
  color: var(--jp-error-color1);
}

.cp-panel .cp-actions {
  display: flex;
  flex-wrap: wrap;
  gap: 6px;
  margin: 8px 0 4px;
}

.cp-panel .cp-button {
  min-width: 0;
  padding: 0 10px;
  height: 26px;
  line-height: 24px;
  border-radius: var(--jp-border-radius);
  border: var(--jp-border-width) solid var(--jp-border-color1);
  background: var(--jp-layout-color2);
  color: var(--jp-ui-font-color1);
  cursor: pointer;
  font-size: var(--jp-ui-font-size1);
}

.cp-panel .cp-button.jp-mod-accept {
  background: var(--jp-brand-color1);
  border-color: var(--jp-brand-color1);
  color: var(--jp-ui-inverse-font-color1);
}

.cp-panel .cp-button:disabled {
  opacity: 0.5;
  cursor: default;
}

.cp-panel .cp-button.cp-small {
  height: 20px;
  line-height: 18px;
  padding: 0 6px;
  font-size: var(--jp-ui-font-size0);
}

.cp-panel button:focus-visible,
.cp-panel input:focus-visible,
.cp-panel select:focus-visible,
.cp-panel summary:focus-visible,
.cp-panel .cp-dag-node:focus-visible,
.cp-panel pre:focus-visible {
  outline: 2px solid var(--jp-brand-color1);
  outline-offset: 1px;
}

.cp-panel .cp-status {
  min-height: 1.4em;
  color: var(--jp-ui-font-color2);
  word-break: break-word;
}

.cp-panel .cp-status[data-kind='error'] {
  color: var(--jp-error-color1);
}

.cp-panel .cp-status[data-kind='success'] {
  color: var(--jp-success-color1);
}

.cp-panel .cp-section {
  border-top: var(--jp-border-width) solid var(--jp-border-color2);
  padding: 4px 0;
}

.cp-panel .cp-section-title {
  cursor: pointer;
  font-weight: 600;
  padding: 4px 0;
  color: var(--jp-ui-font-color1);
}

.cp-panel .cp-subtitle {
  font-size: var(--jp-ui-font-size1);
  font-weight: 600;
  margin: 8px 0 4px;
}

.cp-panel .cp-empty,
.cp-panel .cp-caption,
.cp-panel .cp-ok {
  color: var(--jp-ui-font-color2);
  margin: 4px 0;
}

.cp-panel .cp-link {
  background: none;
  border: none;
  padding: 0;
  color: var(--jp-content-link-color);
  cursor: pointer;
  font: inherit;
  text-align: left;
}

.cp-panel .cp-link:disabled {
  color: var(--jp-ui-font-color1);
  cursor: default;
}

/* steps */

.cp-panel .cp-steps {
  margin: 0;
  padding-left: 22px;
}

.cp-panel .cp-step {
  padding: 2px 0;
}

.cp-panel .cp-step > * {
  margin-right: 6px;
}

.cp-panel .cp-step-name {
  font-weight: 600;
}

.cp-panel .cp-step-cells,
.cp-panel .cp-step-settings {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-pill {
  display: inline-block;
  padding: 0 6px;
  border-radius: 8px;
  font-size: var(--jp-ui-font-size0);
  line-height: 16px;
  border: 1px solid var(--cp-pending-stroke);
  background: var(--cp-pending-fill);
  color: var(--jp-ui-font-color1);
}

.cp-panel .cp-legend {
  display: flex;
  flex-wrap: wrap;
  gap: 4px;
  margin-top: 4px;
}

.cp-panel .cp-pill.cp-state-running,
.cp-panel .cp-pill.cp-state-retrying {
  background: var(--cp-running-fill);
  border-color: var(--cp-running-stroke);
}

.cp-panel .cp-pill.cp-state-succeeded {
  background: var(--cp-succeeded-fill);
  border-color: var(--cp-succeeded-stroke);
}

.cp-panel .cp-pill.cp-state-cached {
  background: var(--cp-cached-fill);
  border-color: var(--cp-cached-stroke);
  border-style: dashed;
}

.cp-panel .cp-pill.cp-state-failed,
.cp-panel .cp-pill.cp-state-cancelled,
.cp-panel .cp-pill.cp-state-blocked {
  background: var(--cp-failed-fill);
  border-color: var(--cp-failed-stroke);
}

.cp-panel .cp-pill.cp-state-skipped {
  background: var(--cp-skipped-fill);
  border-color: var(--cp-skipped-stroke);
  color: var(--jp-ui-font-color2);
}

/* diagnostics */

.cp-panel .cp-diagnostics {
  list-style: none;
  margin: 0;
  padding: 0;
}

.cp-panel .cp-diagnostic {
  padding: 4px 6px;
  margin: 4px 0;
  border-left: 3px solid var(--jp-warn-color1);
  background: var(--jp-layout-color2);
}

.cp-panel .cp-diagnostic.cp-error {
  border-left-color: var(--jp-error-color1);
  color: var(--jp-ui-font-color1);
}

.cp-panel .cp-diagnostic .cp-code {
  font-family: var(--jp-code-font-family);
  font-weight: 600;
}

.cp-panel .cp-diagnostic .cp-where {
  color: var(--jp-ui-font-color2);
}

.cp-panel .cp-diagnostic-button {
  color: var(--jp-ui-font-color1);
}

.cp-panel .cp-hint {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
  margin-top: 2px;
}

/* the DAG */

.cp-panel .cp-dag {
  overflow: auto;
  background: var(--jp-layout-color0);
  border: var(--jp-border-width) solid var(--jp-border-color2);
  border-radius: var(--jp-border-radius);
  text-align: center;
}

.cp-panel .cp-dag-svg {
  display: inline-block;
  font-family: var(--jp-ui-font-family);
}

.cp-panel .cp-dag-edge path {
  fill: none;
  stroke: var(--jp-border-color1);
  stroke-width: 1.3;
}

.cp-panel .cp-dag-edge.cp-explicit path {
  stroke-dasharray: 4 3;
}

.cp-panel .cp-dag-arrow {
  fill: var(--jp-border-color1);
}

.cp-panel .cp-dag-edge-label {
  font-size: 10px;
  fill: var(--jp-ui-font-color2);
  paint-order: stroke;
  stroke: var(--jp-layout-color0);
  stroke-width: 3px;
}

.cp-panel .cp-dag-node {
  cursor: pointer;
}

.cp-panel .cp-dag-node rect {
  fill: var(--cp-pending-fill);
  stroke: var(--cp-pending-stroke);
  stroke-width: 1.5;
}

.cp-panel .cp-dag-node text {
  font-size: 12px;
  fill: var(--jp-ui-font-color1);
}

.cp-panel .cp-dag-node.cp-state-running rect {
  fill: var(--cp-running-fill);
  stroke: var(--cp-running-stroke);
  stroke-width: 2.5;
}

.cp-panel .cp-dag-node.cp-state-succeeded rect {
  fill: var(--cp-succeeded-fill);
  stroke: var(--cp-succeeded-stroke);
}

.cp-panel .cp-dag-node.cp-state-cached rect {
  fill: var(--cp-cached-fill);
  stroke: var(--cp-cached-stroke);
  stroke-dasharray: 4 2;
}

.cp-panel .cp-dag-node.cp-state-failed rect,
.cp-panel .cp-dag-node.cp-state-cancelled rect,
.cp-panel .cp-dag-node.cp-state-blocked rect {
  fill: var(--cp-failed-fill);
  stroke: var(--cp-failed-stroke);
}

.cp-panel .cp-dag-node.cp-state-skipped rect {
  fill: var(--cp-skipped-fill);
  stroke: var(--cp-skipped-stroke);
  stroke-dasharray: 2 2;
}

.cp-panel .cp-dag-node:hover rect {
  stroke: var(--jp-brand-color1);
}

/* forms */

.cp-panel .cp-field {
  display: flex;
  flex-direction: column;
  margin: 4px 0;
}

.cp-panel .cp-field label {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
  margin-bottom: 1px;
}

.cp-panel .cp-field input[type='text'],
.cp-panel .cp-field select {
  box-sizing: border-box;
  width: 100%;
  height: 24px;
  background: var(--jp-input-background);
  color: var(--jp-ui-font-color1);
  border: var(--jp-border-width) solid var(--jp-input-border-color);
  padding: 0 4px;
  font-size: var(--jp-ui-font-size1);
}

.cp-panel .cp-field input.cp-invalid {
  border-color: var(--jp-error-color1);
}

.cp-panel .cp-problem {
  color: var(--jp-error-color1);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-grid {
  display: grid;
  grid-template-columns: repeat(auto-fill, minmax(100px, 1fr));
  column-gap: 8px;
}

.cp-panel .cp-field.cp-checkbox {
  flex-direction: row;
  align-items: center;
  gap: 6px;
}

.cp-panel .cp-form-actions {
  display: flex;
  gap: 6px;
  margin: 6px 0;
}

.cp-panel .cp-cell-info {
  font-weight: 600;
  margin: 2px 0 4px;
}

.cp-panel .cp-note {
  color: var(--jp-warn-color1);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-tags {
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-ui-font-size0);
  color: var(--jp-ui-font-color2);
  word-break: break-all;
}

/* runs */

.cp-panel .cp-table-wrap {
  overflow-x: auto;
}

.cp-panel .cp-runs-table {
  border-collapse: collapse;
  font-size: var(--jp-ui-font-size0);
  white-space: nowrap;
}

.cp-panel .cp-runs-table th,
.cp-panel .cp-runs-table td {
  padding: 2px 6px;
  border-bottom: var(--jp-border-width) solid var(--jp-border-color2);
  text-align: left;
}

.cp-panel .cp-runs-table thead th {
  color: var(--jp-ui-font-color2);
  font-weight: 600;
}

.cp-panel .cp-runs-table td.cp-metric,
.cp-panel .cp-runs-table td.cp-param {
  text-align: right;
  font-family: var(--jp-code-font-family);
}

.cp-panel .cp-runs-table tr.cp-selected {
  background: var(--jp-layout-color2);
}

.cp-panel .cp-run-id {
  font-family: var(--jp-code-font-family);
}

.cp-panel .cp-run-steps {
  list-style: none;
  margin: 0;
  padding: 0;
}

.cp-panel .cp-run-steps li {
  padding: 2px 0;
}

.cp-panel .cp-run-steps li > * {
  margin-right: 6px;
}

.cp-panel .cp-run-step-name {
  font-weight: 600;
}

.cp-panel .cp-log {
  max-height: 240px;
  overflow: auto;
  background: var(--jp-layout-color2);
  color: var(--jp-content-font-color1);
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
  padding: 6px;
  white-space: pre-wrap;
}

.cp-panel .cp-report {
  width: 100%;
  height: 360px;
  border: var(--jp-border-width) solid var(--jp-border-color2);
  background: white; /* reports are rendered with nbconvert's light theme */
}

/* the compile dialog */

.cp-compiled-note {
  margin: 0 0 6px;
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size1);
}

.cp-compiled {
  max-height: 60vh;
  max-width: 80vw;
  overflow: auto;
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
  background: var(--jp-layout-color2);
  color: var(--jp-content-font-color1);
  padding: 8px;
}

/* the step badge on annotated cells */

.jp-Cell.cp-annotated {
  position: relative;
}

.jp-Cell .cp-cell-badge {
  position: absolute;
  top: 1px;
  right: 8px;
  z-index: 2;
  max-width: 40%;
  overflow: hidden;
  text-overflow: ellipsis;
  white-space: nowrap;
  padding: 0 6px;
  border-radius: 8px;
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size0);
  line-height: 16px;
  pointer-events: none;
  background: color-mix(in srgb, var(--jp-brand-color1) 22%, var(--jp-layout-color1));
  color: var(--jp-ui-font-color1);
  border: 1px solid var(--jp-brand-color1);
}

.jp-Cell .cp-cell-badge[data-role='parameters'],
.jp-Cell .cp-cell-badge[data-role='metrics'] {
  background: color-mix(in srgb, var(--jp-warn-color1) 22%, var(--jp-layout-color1));
  border-color: var(--jp-warn-color1);
}

.jp-Cell .cp-cell-badge[data-role='skip'] {
  background: var(--jp-layout-color3);
  border-color: var(--jp-border-color1);
  color: var(--jp-ui-font-color2);
}

/* the cell toolbar sits at the top right of the active cell: keep the badge clear of it */
.jp-Cell.jp-mod-active .cp-cell-badge {
  right: 180px;
}

.cp-panel a {
  color: var(--jp-content-link-color);
  text-decoration: underline;
}

/* -- parameters form ------------------------------------------------------------------- */

.cp-panel .cp-param label .cp-param-kind {
  color: var(--jp-ui-font-color2);
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-param-help {
  display: block;
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
  overflow-wrap: anywhere;
}

.cp-panel .cp-field.cp-checkbox.cp-param {
  flex-wrap: wrap;
}

/* -- runs: the compact table, its details rows, the metrics charts ----------------------- */

.cp-panel .cp-expand {
  width: 1.4em;
  text-align: center;
}

.cp-panel .cp-run-details td {
  background: var(--jp-layout-color2);
  white-space: normal;
}

.cp-panel .cp-facts {
  display: grid;
  grid-template-columns: max-content 1fr;
  gap: 1px 8px;
  margin: 2px 0 6px;
}

.cp-panel .cp-facts dt {
  color: var(--jp-ui-font-color2);
}

.cp-panel .cp-facts dt.cp-metric,
.cp-panel .cp-facts dt.cp-param {
  font-family: var(--jp-code-font-family);
}

.cp-panel .cp-facts dd {
  margin: 0;
  font-family: var(--jp-code-font-family);
  overflow-wrap: anywhere;
}

.cp-panel .cp-chart {
  margin: 0 0 6px;
}

.cp-panel .cp-chart figcaption {
  display: flex;
  justify-content: space-between;
  gap: 6px;
  flex-wrap: wrap;
}

.cp-panel .cp-chart-name {
  font-family: var(--jp-code-font-family);
  font-weight: 600;
}

.cp-panel .cp-chart-range {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-chart-svg {
  display: block;
  width: 100%;
  height: auto;
  max-width: 520px;
  background: var(--jp-layout-color2);
  border-radius: 3px;
}

.cp-panel .cp-chart-axis {
  stroke: var(--jp-border-color1);
  stroke-width: 1;
}

.cp-panel .cp-chart-line {
  fill: none;
  stroke: var(--jp-brand-color1);
  stroke-width: 1.5;
}

.cp-panel .cp-chart-point {
  fill: var(--jp-brand-color1);
  stroke: var(--jp-layout-color1);
  stroke-width: 1;
  cursor: pointer;
}

.cp-panel .cp-chart-point.cp-state-failed,
.cp-panel .cp-chart-point.cp-state-cancelled {
  fill: var(--jp-error-color1);
}

.cp-panel .cp-chart-point.cp-selected {
  stroke: var(--jp-ui-font-color0);
  stroke-width: 2;
}

.cp-panel .cp-chart-point:hover,
.cp-panel .cp-chart-point:focus-visible {
  outline: none;
  stroke: var(--jp-ui-font-color0);
  stroke-width: 2.5;
}

/* -- tune: the study's form, its trials and the objective over them ------------------- */

.cp-panel .cp-trials-table tr.cp-best th,
.cp-panel .cp-trials-table tr.cp-best td {
  font-weight: 600;
  background: var(--jp-brand-color3);
}

.cp-panel .cp-trial-params {
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-ui-font-size0);
}

.cp-panel .cp-tune-chart .cp-chart-point.cp-selected {
  fill: var(--jp-success-color1);
  stroke-width: 2.5;
}

/* -- run details: errors, tracebacks, figures -------------------------------------------- */

.cp-panel .cp-run-parameters {
  color: var(--jp-ui-font-color2);
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-ui-font-size0);
  margin: 0 0 4px;
  overflow-wrap: anywhere;
}

.cp-panel .cp-run-steps li .cp-goto-cell,
.cp-panel .cp-run-steps li .cp-traceback,
.cp-panel .cp-run-steps li .cp-thumbs {
  display: block;
  margin: 2px 0 0;
}

.cp-panel .cp-traceback pre {
  max-height: 220px;
  overflow: auto;
  margin: 2px 0;
  padding: 4px 6px;
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
  background: var(--jp-layout-color2);
  border: 1px solid var(--jp-border-color2);
  white-space: pre;
}

.cp-panel .cp-thumbs:empty {
  display: none;
}

.cp-panel .cp-thumbs {
  display: flex;
  flex-wrap: wrap;
  gap: 4px;
}

.cp-panel .cp-thumb {
  padding: 1px;
  border: 1px solid var(--jp-border-color1);
  background: var(--jp-layout-color0);
  border-radius: 2px;
  cursor: zoom-in;
  line-height: 0;
}

.cp-panel .cp-thumb img {
  width: 72px;
  height: 54px;
  object-fit: contain;
}

.cp-panel .cp-thumb:hover,
.cp-panel .cp-thumb:focus-visible {
  border-color: var(--jp-brand-color1);
}

.cp-figure-large img {
  display: block;
  max-width: min(80vw, 1000px);
  max-height: 70vh;
  background: white; /* figures are drawn for a white page */
}

/* -- diagnostics on their cells ---------------------------------------------------------- */

.jp-Cell.cp-has-diagnostic {
  box-shadow: inset 3px 0 0 var(--jp-warn-color1);
}

.jp-Cell.cp-has-diagnostic[data-cp-severity='error'] {
  box-shadow: inset 3px 0 0 var(--jp-error-color1);
}

.jp-Cell .cp-cell-diagnostics {
  margin: 2px 0 2px calc(var(--jp-cell-prompt-width, 64px) + var(--jp-cell-padding, 5px));
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
}

.jp-Cell .cp-cell-diagnostic {
  color: var(--jp-warn-color1);
}

.jp-Cell .cp-cell-diagnostic.cp-error {
  color: var(--jp-error-color1);
}

.jp-Cell .cp-cell-diagnostic::before {
  content: '⚠ ';
}

.cp-panel [hidden] {
  display: none !important;
}

/* the runs table fits the sidebar: three narrow columns, the rest in the details rows */
.cp-panel .cp-runs-table {
  width: 100%;
}

.cp-panel .cp-runs-table th,
.cp-panel .cp-runs-table td {
  padding: 2px 3px;
}

.cp-panel .cp-runs-table thead th.cp-metric {
  max-width: 6em;
  overflow: hidden;
  text-overflow: ellipsis;
  text-align: right;
}

.cp-panel .cp-runs-table .cp-pill {
  padding: 0 4px;
}
`,""]),r.d(p,{},{A:t})},6314(e){e.exports=function(e){var p=[];return p.toString=function(){return this.map(function(p){var r="",o=void 0!==p[5];return p[4]&&(r+="@supports (".concat(p[4],") {")),p[2]&&(r+="@media ".concat(p[2]," {")),o&&(r+="@layer".concat(p[5].length>0?" ".concat(p[5]):""," {")),r+=e(p),o&&(r+="}"),p[2]&&(r+="}"),p[4]&&(r+="}"),r}).join("")},p.i=function(e,r,o,a,c){"string"==typeof e&&(e=[[null,e,void 0]]);var t={};if(o)for(var l=0;l<this.length;l++){var n=this[l][0];null!=n&&(t[n]=!0)}for(var i=0;i<e.length;i++){var s=[].concat(e[i]);o&&t[s[0]]||(void 0!==c&&(void 0===s[5]||(s[1]="@layer".concat(s[5].length>0?" ".concat(s[5]):""," {").concat(s[1],"}")),s[5]=c),r&&(s[2]&&(s[1]="@media ".concat(s[2]," {").concat(s[1],"}")),s[2]=r),a&&(s[4]?(s[1]="@supports (".concat(s[4],") {").concat(s[1],"}"),s[4]=a):s[4]="".concat(a)),p.push(s))}},p}},1601(e){e.exports=function(e){return e[1]}},5072(e){var p=[];function r(e){for(var r=-1,o=0;o<p.length;o++)if(p[o].identifier===e){r=o;break}return r}function o(e,o){for(var a={},c=[],t=0;t<e.length;t++){var l=e[t],n=o.base?l[0]+o.base:l[0],i=a[n]||0,s="".concat(n," ").concat(i);a[n]=i+1;var d=r(s),f={css:l[1],media:l[2],sourceMap:l[3],supports:l[4],layer:l[5]};if(-1!==d)p[d].references++,p[d].updater(f);else{var u=function(e,p){var r=p.domAPI(p);return r.update(e),function(p){p?(p.css!==e.css||p.media!==e.media||p.sourceMap!==e.sourceMap||p.supports!==e.supports||p.layer!==e.layer)&&r.update(e=p):r.remove()}}(f,o);o.byIndex=t,p.splice(t,0,{identifier:s,updater:u,references:1})}c.push(s)}return c}e.exports=function(e,a){var c=o(e=e||[],a=a||{});return function(e){e=e||[];for(var t=0;t<c.length;t++){var l=r(c[t]);p[l].references--}for(var n=o(e,a),i=0;i<c.length;i++){var s=r(c[i]);0===p[s].references&&(p[s].updater(),p.splice(s,1))}c=n}}},7659(e){var p={};e.exports=function(e,r){var o=function(e){if(void 0===p[e]){var r=document.querySelector(e);if(window.HTMLIFrameElement&&r instanceof window.HTMLIFrameElement)try{r=r.contentDocument.head}catch(e){r=null}p[e]=r}return p[e]}(e);if(!o)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");o.appendChild(r)}},540(e){e.exports=function(e){var p=document.createElement("style");return e.setAttributes(p,e.attributes),e.insert(p,e.options),p}},5056(e,p,r){e.exports=function(e){var p=r.nc;p&&e.setAttribute("nonce",p)}},7825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var p=e.insertStyleElement(e);return{update:function(r){var o,a,c;o="",r.supports&&(o+="@supports (".concat(r.supports,") {")),r.media&&(o+="@media ".concat(r.media," {")),(a=void 0!==r.layer)&&(o+="@layer".concat(r.layer.length>0?" ".concat(r.layer):""," {")),o+=r.css,a&&(o+="}"),r.media&&(o+="}"),r.supports&&(o+="}"),(c=r.sourceMap)&&"u">typeof btoa&&(o+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(c))))," */")),e.styleTagTransform(o,p,e.options)},remove:function(){var e;null===(e=p).parentNode||e.parentNode.removeChild(e)}}}},1113(e){e.exports=function(e,p){if(p.styleSheet)p.styleSheet.cssText=e;else{for(;p.firstChild;)p.removeChild(p.firstChild);p.appendChild(document.createTextNode(e))}}},8579(e,p,r){var o=r(5072),a=r.n(o),c=r(7825),t=r.n(c),l=r(7659),n=r.n(l),i=r(5056),s=r.n(i),d=r(540),f=r.n(d),u=r(1113),v=r.n(u),g=r(8475),h={};h.styleTagTransform=v(),h.setAttributes=s(),h.insert=n().bind(null,"head"),h.domAPI=t(),h.insertStyleElement=f(),a()(g.A,h),g.A&&g.A.locals&&g.A.locals}}]);