// "Promote to pipeline": a notebook toolbar button and a palette command. Both save the
// notebook, ask the server for a trial run (dry run), show what it inferred, and on
// "Make it live" promote it for real. The server side is jupyter_ratatouille/handlers.py.
import { Dialog, ICommandPalette, ToolbarButton, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

const COMMAND = 'ratatouille:promote';
const LABEL = 'Promote to pipeline';

// One promotion at a time: a second press while a trial run is going would start another.
let busy = false;

async function post(body) {
  const settings = ServerConnection.makeSettings();
  const url = settings.baseUrl.replace(/\/$/, '') + '/ratatouille/promote';
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'POST', body: JSON.stringify(body) },
    settings
  );
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const reason = (data && (data.message || data.reason)) || response.statusText;
    const where = response.status >= 500 ? ' (details in the Jupyter server log)'
      : response.status === 404 ? ': the jupyter_ratatouille server extension is not loaded (reinstall with `make install` and restart JupyterLab as `make run` does)'
      : '';
    return { ok: false, title: `The server answered ${response.status}`, error: reason + where };
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'testid') {
      node.dataset.testid = value;
    } else if (key === 'className') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

function body(node) {
  return new Widget({ node });
}

// A definition list of label → value rows, each row findable by its data-testid.
function facts(rows) {
  const list = el('dl', { className: 'ratatouille-facts' });
  for (const [key, label, value] of rows) {
    list.append(el('dt', {}, label), el('dd', { testid: `ratatouille-${key}` }, value));
  }
  return list;
}

function listOf(items, empty) {
  return items && items.length ? items.join(', ') : empty;
}

function seconds(value) {
  return typeof value === 'number' ? `${value.toFixed(1)} s` : String(value);
}

function inferred(p) {
  return facts([
    ['reads', 'Reads', listOf(p.reads, 'no lake tables')],
    ['publishes', 'Publishes', `${p.table} (${p.rows} rows in the trial run)`],
    ['checks', 'Checks', listOf(p.checks, 'none')],
    // A check that failed in the trial fails the step's builds too: say so before it goes live.
    ...(p.failed_checks && p.failed_checks.length
      ? [['failed-checks', 'Failed in the trial', listOf(p.failed_checks, '')]]
      : []),
    ['run-time', 'Trial run', seconds(p.run_s)],
    ['step', 'Step', `${p.name}${p.replaced ? ' (updates the existing step)' : ''}`]
  ]);
}

function dagsterLinks(p) {
  if (!p.dagster_url) {
    return null;
  }
  const base = p.dagster_url.replace(/\/$/, '');
  const links = el('p', { className: 'ratatouille-links' });
  const asset = el('a', {
    href: `${base}/assets/${p.asset_key.map(encodeURIComponent).join('/')}`,
    target: '_blank',
    rel: 'noopener',
    testid: 'ratatouille-asset-link'
  }, 'Open the asset in Dagster');
  links.append(asset);
  if (p.run_id) {
    const run = el('a', {
      href: `${base}/runs/${encodeURIComponent(p.run_id)}`,
      target: '_blank',
      rel: 'noopener',
      testid: 'ratatouille-run-link'
    }, 'Follow its first run');
    links.append(' · ', run);
  }
  return links;
}

function showRefusal(answer) {
  const node = el('div', { className: 'ratatouille-promote-refusal', testid: 'ratatouille-promote-refusal' },
    el('p', { className: 'ratatouille-refusal-title', testid: 'ratatouille-refusal-title' },
      el('strong', {}, answer.title || 'Could not promote this notebook')),
    el('p', { className: 'ratatouille-refusal-message', testid: 'ratatouille-refusal-message' },
      answer.error || ''));
  return showDialog({
    title: 'Not promoted',
    body: body(node),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

// A dialog without buttons while the server works; closed by the caller.
function progress(message) {
  const node = el('div', { className: 'ratatouille-promote-progress', testid: 'ratatouille-promote-progress' },
    el('div', { className: 'ratatouille-spinner' }),
    el('p', {}, message));
  const dialog = new Dialog({ title: LABEL, body: body(node), buttons: [], hasClose: false });
  void dialog.launch();
  return dialog;
}

async function promote(panel) {
  if (busy || !panel) {
    return;
  }
  busy = true;
  try {
    await panel.context.ready;
    await panel.context.save();
    const path = panel.context.path;
    let waiting = progress('Running the notebook in a fresh kernel…');
    let trial;
    try {
      trial = await post({ path, dry_run: true });
    } finally {
      waiting.dispose();
    }
    if (!trial.ok) {
      await showRefusal(trial);
      return;
    }
    const preview = el('div', { className: 'ratatouille-promote-preview', testid: 'ratatouille-promote-preview' },
      el('p', {}, `The trial run of ${path} worked. Once live, ${trial.table} rebuilds whenever its inputs change.`),
      inferred(trial));
    const choice = await showDialog({
      title: LABEL,
      body: body(preview),
      buttons: [
        Dialog.cancelButton({ label: 'Cancel' }),
        Dialog.okButton({ label: 'Make it live', className: 'ratatouille-make-live' })
      ]
    });
    if (!choice.button.accept) {
      return;
    }
    waiting = progress('Making it live: writing the step, reloading Dagster, starting its first build…');
    let live;
    try {
      live = await post({ path, dry_run: false });
    } finally {
      waiting.dispose();
    }
    if (!live.ok) {
      await showRefusal(live);
      return;
    }
    const done = el('div', { className: 'ratatouille-promote-result', testid: 'ratatouille-promote-result' },
      el('p', {}, `${live.table} is a pipeline step.`),
      facts([
        ['asset-key', 'Asset', live.asset_key.join('/')],
        ['step-path', 'Step file', live.step_path || ''],
        ['reads', 'Reads', listOf(live.reads, 'no lake tables')],
        ['dagster', 'Dagster', live.dagster || '']
      ]),
      dagsterLinks(live));
    await showDialog({ title: 'Promoted', body: body(done), buttons: [Dialog.okButton({ label: 'Close' })] });
  } catch (e) {
    await showRefusal({ title: 'Could not promote this notebook', error: String((e && e.message) || e) });
  } finally {
    busy = false;
  }
}

const plugin = {
  id: 'jupyter-ratatouille:promote',
  description: 'Promote a notebook to a Ratatouille pipeline step.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (app, tracker, palette) => {
    app.commands.addCommand(COMMAND, {
      label: LABEL,
      caption: 'Run this notebook in a fresh kernel and make it a pipeline step',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => promote(tracker.currentWidget)
    });
    if (palette) {
      palette.addItem({ command: COMMAND, category: 'Ratatouille' });
    }
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: panel => {
        const button = new ToolbarButton({
          className: 'ratatouille-promote-button',
          label: LABEL,
          tooltip: 'Run this notebook in a fresh kernel and make it a pipeline step',
          onClick: () => void promote(panel)
        });
        panel.toolbar.insertItem(10, 'ratatouille-promote', button);
        return button;
      }
    });
  }
};

export default plugin;
