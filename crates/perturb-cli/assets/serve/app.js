// The page of `perturb serve` (and of `perturb explain --html`): draws the graph of an
// expression from the report of `perturb explain --json` and steps through forward mode
// (tangents from the inputs on) and reverse mode (adjoints from the output back, one
// contribution at a time); a second view multiplies the Jacobians of a vector chain.
// Every number shown is one of the report's, formatted; the page computes none itself.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  // The self-contained page carries its data; the served one asks the server.
  const embeddedReport = $('report');
  const embeddedJacobians = $('jacobians');

  // ---- numbers and elements ----

  /** A number as shown: 10 significant digits; "inf", "-inf", "NaN" as the report writes them. */
  function num(v) {
    if (typeof v === 'string') return v;
    if (v === 0) return '0';
    return String(Number(v.toPrecision(10)));
  }
  /** A number inside a product or sum: negative ones in parentheses. */
  function factor(v) {
    const s = num(v);
    return s.startsWith('-') ? '(' + s + ')' : s;
  }
  function html(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function shorten(s, n) {
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }
  /** A line of the explanation: text with its numbers in spans the tests can read. */
  function line(parts, cls) {
    const p = html('div', cls ? { class: cls } : {});
    for (const part of parts) {
      if (typeof part === 'string') p.append(part);
      else p.append(html('span', { class: 'num ' + part.kind }, part.text));
    }
    return p;
  }

  // ---- the report and its derived tables ----

  let report = null;
  const state = { mode: 'forward', wrt: 0, step: 0 };
  let view = null; // what the drawing needs: nodes' elements, uses, contributions by node

  function prepare(r) {
    const n = r.nodes.length;
    const uses = new Array(n).fill(0);
    for (const node of r.nodes) for (const p of node.partials) uses[p.parent] += 1;
    const into = Array.from({ length: n }, () => []);
    if (r.reverse) r.reverse.contributions.forEach((c, k) => into[c.to].push(k));
    return { uses, into };
  }

  // ---- layout: inputs on the left, each node one column right of its deepest parent ----

  const LINE = 17, PAD = 8, CHAR = 7.9, COLUMN_GAP = 92, ROW_GAP = 16;

  /** A node's text: its definition, its value and its local partials (the sweep's line is
   * added as it runs). */
  function nodeLines(node) {
    if (!node.partials.length) return [node.name + '  (input)', 'value ' + num(node.value), ''];
    const partials = node.partials.map((p) => `∂${p.name} ${num(p.value)}`).join('  ');
    return [node.name + ' = ' + shorten(node.definition, 28), 'value ' + num(node.value), shorten(partials, 40)];
  }

  /** Node `i`'s tangent line in forward sweep `f`. */
  function tangentText(f, i) {
    return `d${report.nodes[i].name}/d${f.wrt} = ${num(f.tangents[i])}`;
  }
  /** Node `i`'s adjoint line: the adjoint once every contribution is in. */
  function adjointText(i, done) {
    const value = done ? num(report.reverse.adjoints[i]) : '…';
    return `d${report.output.name}/d${report.nodes[i].name} = ${value}`;
  }
  /** A number in four digits, where room is short (every digit is in the explanation). */
  function brief(v) {
    return typeof v === 'string' ? v : factor(Number(v.toPrecision(4)));
  }
  /** A reused value's second line: the contributions received so far, then their sum. */
  function sumText(i, received, done) {
    const terms = received.map((k) => brief(report.reverse.contributions[k].amount)).join(' + ');
    return done ? '= ' + terms : terms + ' + …';
  }
  /** The lines node `i` shows in any sweep, for its width. */
  function sweepTexts(i) {
    const texts = (report.forward || []).map((f) => tangentText(f, i));
    if (report.reverse) texts.push(adjointText(i, true), sumText(i, view.into[i], true));
    return texts;
  }

  function layoutGraph(r) {
    const nodes = r.nodes;
    const rank = nodes.map(() => 0);
    nodes.forEach((node, i) => {
      for (const p of node.partials) rank[i] = Math.max(rank[i], rank[p.parent] + 1);
    });
    const columns = [];
    nodes.forEach((_, i) => (columns[rank[i]] = columns[rank[i]] || []).push(i));
    // Order each column by the mean place of the node's parents (then of its children),
    // so that edges cross less.
    const place = new Array(nodes.length).fill(0);
    const renumber = () => columns.forEach((col) => col.forEach((i, k) => (place[i] = k)));
    renumber();
    const children = nodes.map(() => []);
    nodes.forEach((node, i) => node.partials.forEach((p) => children[p.parent].push(i)));
    const mean = (list, fallback) =>
      list.length ? list.reduce((s, j) => s + place[j], 0) / list.length : fallback;
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 1; c < columns.length; c++) {
        const key = new Map(columns[c].map((i) => [i, mean(nodes[i].partials.map((p) => p.parent), place[i])]));
        columns[c].sort((a, b) => key.get(a) - key.get(b) || a - b);
        renumber();
      }
      for (let c = columns.length - 2; c >= 0; c--) {
        const key = new Map(columns[c].map((i) => [i, mean(children[i], place[i])]));
        columns[c].sort((a, b) => key.get(a) - key.get(b) || a - b);
        renumber();
      }
    }
    const box = nodes.map((node) => {
      const lines = [...nodeLines(node), ...sweepTexts(node.index)];
      // Room for the "used N×" badge beside the title.
      if (view.uses[node.index] > 1) lines[0] += ' '.repeat(10);
      const chars = Math.max(14, ...lines.map((s) => s.length));
      const reused = view.uses[node.index] > 1 && report.reverse;
      return { w: Math.round(chars * CHAR + 2 * PAD), h: (reused ? 5 : 4) * LINE + 2 * PAD - 4 };
    });
    const heights = columns.map((col) => col.reduce((s, i) => s + box[i].h, 0) + ROW_GAP * (col.length - 1));
    const height = Math.max(...heights) + 40;
    let x = 16;
    columns.forEach((col, c) => {
      const width = Math.max(...col.map((i) => box[i].w));
      let y = (height - heights[c]) / 2;
      for (const i of col) {
        box[i].x = x + (width - box[i].w) / 2;
        box[i].y = y;
        y += box[i].h + ROW_GAP;
      }
      x += width + COLUMN_GAP;
    });
    return { box, width: x - COLUMN_GAP + 16, height };
  }

  // ---- drawing ----

  function draw() {
    const r = report;
    const holder = $('graph');
    holder.textContent = '';
    if (!r.nodes.length) {
      holder.append(html('p', { class: 'empty' }, 'No graph: the expression uses no variable, so every derivative is 0.'));
      return;
    }
    const { box, width, height } = layoutGraph(r);
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
    root.append(svg('title', {}, 'The computational graph of ' + r.output.name));
    const edges = svg('g', { class: 'edges' });
    const nodesG = svg('g', { class: 'nodes' });
    root.append(edges, nodesG);
    const edgeEls = new Map(); // "child:k" (k-th parent) -> edge group
    r.nodes.forEach((node, i) => {
      const seen = new Map();
      node.partials.forEach((p, k) => {
        // A value used twice by one node (x*x) is drawn as two edges, side by side.
        const copy = seen.get(p.parent) || 0;
        seen.set(p.parent, copy + 1);
        const a = box[p.parent], b = box[i];
        const x1 = a.x + a.w, y1 = a.y + a.h / 2 + copy * 10 - (copy ? 5 : 0);
        const x2 = b.x, y2 = b.y + b.h / 2 + copy * 10 - (copy ? 5 : 0);
        const dx = Math.max(30, (x2 - x1) / 2);
        const g = svg('g', { class: 'edge', 'data-from': p.parent, 'data-to': i, 'data-k': k });
        g.append(svg('path', { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` }));
        g.append(svg('title', {}, `∂${node.name}/∂${p.name} = ${num(p.value)}`));
        // Reverse mode writes the contribution the edge carries at its middle.
        const carried = svg('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3, 'text-anchor': 'middle', class: 'carried' }, '');
        g.append(carried);
        edges.append(g);
        edgeEls.set(i + ':' + k, g);
      });
    });
    const nodeEls = r.nodes.map((node, i) => {
      const b = box[i];
      const classes = ['node'];
      if (!node.partials.length) classes.push('input');
      if (i === r.output.node) classes.push('output');
      if (view.uses[i] > 1) classes.push('reused');
      if (!node.used) classes.push('unused');
      const g = svg('g', { class: classes.join(' '), 'data-index': i, transform: `translate(${b.x},${b.y})` });
      g.append(svg('rect', { width: b.w, height: b.h, rx: 7 }));
      const [def, value, partials] = nodeLines(node);
      const title = svg('text', { x: PAD, y: PAD + 12, class: 'title' }, def);
      title.append(svg('title', {}, node.name + ' = ' + node.definition));
      g.append(title);
      g.append(svg('text', { x: PAD, y: PAD + 12 + LINE, class: 'value' }, value));
      const local = svg('text', { x: PAD, y: PAD + 12 + 2 * LINE, class: 'partials' }, partials);
      local.append(svg('title', {}, 'local partial derivatives: ' + node.partials.map((p) => `∂${node.name}/∂${p.name} = ${num(p.value)}`).join(', ')));
      g.append(local);
      g.append(svg('text', { x: PAD, y: PAD + 12 + 3 * LINE, class: 'sweep' }, ''));
      g.append(svg('text', { x: PAD, y: PAD + 12 + 4 * LINE, class: 'sum' }, ''));
      if (view.uses[i] > 1) {
        g.append(svg('text', { x: b.w - PAD, y: PAD + 12, 'text-anchor': 'end', class: 'badge' }, `used ${view.uses[i]}×`));
      }
      nodesG.append(g);
      return g;
    });
    holder.append(root);
    view.svg = root;
    view.nodeEls = nodeEls;
    view.edgeEls = edgeEls;
    view.box = box;
  }

  // ---- the sweeps, step by step ----

  function forwardSweep() {
    return report.forward[state.wrt];
  }
  function stepCount() {
    if (state.mode === 'forward') return forwardSweep() ? report.nodes.length : 0;
    return report.reverse ? 1 + report.reverse.contributions.length : 0;
  }

  function render() {
    const r = report;
    const steps = stepCount();
    state.step = Math.max(0, Math.min(state.step, steps));
    $('step-count').textContent = steps ? `step ${state.step} of ${steps}` : 'no steps';
    $('first').disabled = $('back').disabled = state.step === 0;
    $('next').disabled = $('last').disabled = state.step >= steps;
    $('wrt').disabled = state.mode !== 'forward';
    const expl = $('explanation');
    expl.textContent = '';
    expl.className = state.mode;
    if (!r.nodes.length) {
      expl.append(line([`${r.output.name} = ${num(r.output.value)} is a constant: it does not depend on any variable.`]));
      return;
    }
    view.svg.setAttribute('class', state.mode);
    for (const g of view.nodeEls) {
      g.classList.remove('done', 'partial', 'current');
      g.querySelector('.sweep').textContent = '';
      g.querySelector('.sum').textContent = '';
    }
    for (const g of view.edgeEls.values()) {
      g.classList.remove('active', 'carried');
      g.querySelector('.carried').textContent = '';
    }
    if (state.mode === 'forward') renderForward(expl); else renderReverse(expl);
    renderTable();
  }

  function renderForward(expl) {
    const r = report, sweep = forwardSweep();
    if (!sweep) {
      expl.append(line(['Forward mode was not run for this report.']));
      return;
    }
    const x = sweep.wrt, t = sweep.tangents;
    const seed = r.variables.find((v) => v.name === x).node;
    for (let i = 0; i < state.step; i++) {
      view.nodeEls[i].classList.add('done');
      view.nodeEls[i].querySelector('.sweep').textContent = tangentText(sweep, i);
    }
    if (state.step === 0) {
      expl.append(line([`Forward mode, perturbing ${x}: seed d${x}/d${x} = 1 (every other input 0); then, from the inputs on, each node's tangent is the sum over its parents of (local partial) × (the parent's tangent).`], 'why'));
      expl.append(line(['Press Next (or →) to start.'], 'why'));
      return;
    }
    const i = state.step - 1, node = r.nodes[i], n = node.name;
    view.nodeEls[i].classList.add('current');
    if (!node.partials.length) {
      expl.append(line([`d${n}/d${x} = `, { kind: 'tangent', text: num(t[i]) }, '   ']));
      expl.append(line([i === seed ? `(the seed: ${x} is the input perturbed)` : `(another input: it is not perturbed)`], 'why'));
      return;
    }
    node.partials.forEach((_, k) => view.edgeEls.get(i + ':' + k).classList.add('active'));
    const symbols = node.partials.map((p) => `∂${n}/∂${p.name} · d${p.name}/d${x}`).join(' + ');
    const parts = [`d${n}/d${x} = ${symbols}`];
    expl.append(line(parts));
    const numbers = ['    = '];
    node.partials.forEach((p, k) => {
      if (k) numbers.push(' + ');
      numbers.push({ kind: 'partial', text: factor(p.value) }, ' × ', { kind: 'parent-tangent', text: factor(t[p.parent]) });
    });
    numbers.push(' = ', { kind: 'tangent', text: num(t[i]) });
    expl.append(line(numbers));
  }

  function renderReverse(expl) {
    const r = report, rev = r.reverse;
    if (!rev) {
      expl.append(line([`Reverse mode: ${r.output.name} is a constant (or reverse mode was not run), so there is nothing to sweep.`], 'why'));
      return;
    }
    const L = r.output.name, o = r.output.node, adj = rev.adjoints, cs = rev.contributions;
    const arrived = Math.max(0, state.step - 1); // contributions arrived so far
    const received = r.nodes.map(() => []);
    for (let k = 0; k < arrived; k++) received[cs[k].to].push(k);
    const done = (p) => (p === o ? state.step >= 1 : view.into[p].length > 0 && received[p].length === view.into[p].length)
      || state.step === stepCount();
    r.nodes.forEach((_, p) => {
      const g = view.nodeEls[p];
      const finished = done(p), started = received[p].length > 0;
      if (finished || started) {
        g.classList.add(finished ? 'done' : 'partial');
        g.querySelector('.sweep').textContent = adjointText(p, finished);
        if (view.uses[p] > 1 && started) g.querySelector('.sum').textContent = sumText(p, received[p], finished);
      }
    });
    for (let k = 0; k < arrived; k++) {
      const c = cs[k];
      const g = view.edgeEls.get(c.from + ':' + partialIndex(c, k));
      g.classList.add('carried');
      // Four digits on the edge, where room is short; every digit in the explanation.
      g.querySelector('.carried').textContent = '→ ' + brief(c.amount);
    }
    if (state.step === 0) {
      expl.append(line([`Reverse mode, from ${L}: seed d${L}/d${L} = 1; then, from the output back, each node's adjoint d${L}/d(node) is the sum over the nodes that use it of (their adjoint) × (local partial): one contribution per use.`], 'why'));
      expl.append(line(['Press Next (or →) to start.'], 'why'));
      return;
    }
    if (state.step === 1) {
      view.nodeEls[o].classList.add('current');
      expl.append(line([`d${L}/d${L} = `, { kind: 'adjoint', text: num(adj[o]) }]));
      expl.append(line(['(the seed)'], 'why'));
      return;
    }
    const k = state.step - 2, c = cs[k];
    const from = r.nodes[c.from].name, to = r.nodes[c.to].name;
    view.nodeEls[c.to].classList.add('current');
    view.edgeEls.get(c.from + ':' + partialIndex(c, k)).classList.add('active');
    expl.append(line([`contribution of ${from} to d${L}/d${to}: d${L}/d${from} · ∂${from}/∂${to} = `,
      { kind: 'from-adjoint', text: factor(adj[c.from]) }, ' × ', { kind: 'local', text: factor(c.local) },
      ' = ', { kind: 'amount', text: num(c.amount) }]));
    const all = view.into[c.to], got = received[c.to];
    if (got.length < all.length) {
      expl.append(line([`d${L}/d${to} so far: ${got.map((j) => factor(cs[j].amount)).join(' + ')} + …   (${got.length} of the ${all.length} uses of ${to})`], 'why'));
    } else if (all.length > 1) {
      const sum = [`d${L}/d${to} = `];
      all.forEach((j, m) => {
        if (m) sum.push(' + ');
        sum.push({ kind: 'term', text: factor(cs[j].amount) });
      });
      sum.push(' = ', { kind: 'adjoint', text: num(adj[c.to]) });
      expl.append(line(sum));
      expl.append(line([`(${to} is used ${all.length} times: the ${all.length} contributions add up to the total derivative)`], 'why'));
    } else {
      expl.append(line([`d${L}/d${to} = `, { kind: 'adjoint', text: num(adj[c.to]) }]));
    }
  }

  /** Which parent entry of `c.from` contribution `k` runs along: the sweep adds one
   * contribution per parent entry, in order, so it is `k`'s place in its node's run (x*x has
   * two entries for x). */
  function partialIndex(c, k) {
    const cs = report.reverse.contributions;
    let j = k;
    while (j > 0 && cs[j - 1].from === c.from) j--;
    return k - j;
  }

  function renderTable() {
    const r = report, table = $('values');
    table.textContent = '';
    const forward = state.mode === 'forward';
    const sweepHead = forward ? (forwardSweep() ? `tangent d(node)/d${forwardSweep().wrt}` : 'tangent')
      : `adjoint d${r.output.name}/d(node)`;
    const head = html('tr');
    for (const h of ['node', 'definition', 'value', 'local partial derivatives', sweepHead]) head.append(html('th', {}, h));
    table.append(head);
    r.nodes.forEach((node, i) => {
      const tr = html('tr', { 'data-index': i });
      const partials = node.partials.map((p) => `∂${node.name}/∂${p.name} = ${num(p.value)}`).join(', ');
      const g = view.nodeEls[i];
      const shown = g.classList.contains('done') ? g.querySelector('.sweep').textContent.split(' = ').pop() : '';
      tr.append(html('td', {}, node.name), html('td', {}, node.definition), html('td', { class: 'num' }, num(node.value)),
        html('td', {}, partials || '(an input)'), html('td', { class: 'num' }, shown));
      if (g.classList.contains('current')) tr.className = 'current';
      table.append(tr);
    });
  }

  function show(r) {
    report = r;
    view = prepare(r);
    $('error').hidden = true;
    $('controls').hidden = false;
    const wrt = $('wrt');
    wrt.textContent = '';
    (r.forward || []).forEach((f, k) => wrt.append(html('option', { value: k }, f.wrt)));
    state.wrt = 0;
    state.step = 0;
    const forward = r.forward && r.forward.length > 0;
    $('mode-forward').disabled = !forward;
    $('mode-reverse').disabled = !r.reverse;
    if (!r.reverse) state.mode = 'forward';
    if (!forward && r.reverse) state.mode = 'reverse';
    $('mode-' + state.mode).checked = true;
    // What explain warns about (a value the output does not use, an overflow), and the
    // forward sweeps not listed (more than 200 variables).
    const notes = [...(r.warnings || [])];
    if (r.forward_not_shown) notes.push(`${r.forward_not_shown} more variables have forward sweeps that are not listed (at most 200 are)`);
    $('warnings').textContent = notes.map((w) => 'warning: ' + w).join('\n');
    $('warnings').hidden = notes.length === 0;
    draw();
    render();
  }

  /** An error of `perturb explain --json`, with the source line and a caret under its place. */
  function showError(error, source) {
    const box = $('error');
    let text = error.message;
    if (error.line) {
      text = `${error.line}:${error.column}: ${error.message}`;
      const src = source.split('\n')[error.line - 1];
      if (src !== undefined) {
        const gutter = String(error.line);
        text += `\n${' '.repeat(gutter.length)} |\n${gutter} | ${src}\n${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, error.column - 1))}^`;
      }
    }
    for (const note of error.notes || []) text += '\n  ' + note;
    box.textContent = text;
    box.hidden = false;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    let data;
    try {
      data = await response.json();
    } catch (e) {
      data = { error: { message: `the server answered ${response.status} without JSON` } };
    }
    return data;
  }

  async function evaluate() {
    const expression = $('expr').value, at = $('at').value;
    try {
      const data = await post('api/explain', { expression, at });
      if (data.error) showError(data.error, expression); else show(data);
    } catch (e) {
      showError({ message: 'cannot reach perturb serve: ' + e.message }, '');
    }
    evaluated();
  }

  /** Marks an evaluation as shown (the browser tests wait for the count to change). */
  function evaluated() {
    document.body.dataset.evaluated = String(Number(document.body.dataset.evaluated || 0) + 1);
  }

  // ---- the Jacobian view ----

  let chain = null;
  let chainStep = 0;
  let jacobianExamples = [];

  function matrix(m) {
    const t = html('table', { class: 'matrix' });
    for (const row of m) {
      const tr = html('tr');
      for (const v of row) tr.append(html('td', { class: 'num' }, num(v)));
      t.append(tr);
    }
    return t;
  }
  function shape(m) {
    return `${m.length}×${m[0] ? m[0].length : 0}`;
  }
  function vector(v) {
    return '[' + v.map(num).join(', ') + ']';
  }

  function showChain(c) {
    chain = c;
    chainStep = 0;
    $('jacobian-error').hidden = true;
    $('jacobian-input').value = c.input.value.map(num).join(', ');
    const list = html('ol');
    for (const s of c.steps) {
      const li = html('li');
      li.append(`${s.definition}  →  ${s.name} = ${vector(s.value)}`, html('br'), html('span', { class: 'note' }, `∂${s.name}/∂${s.input}: ${s.note}`));
      list.append(li);
    }
    const steps = $('jacobian-steps');
    steps.textContent = '';
    steps.append(html('h2', {}, c.title), html('p', {}, `At ${c.input.name} = ${vector(c.input.value)}, each step's Jacobian, then their product, ∂${c.output}/∂${c.input.name} by the chain rule:`), list);
    renderChain();
  }

  function renderChain() {
    const c = chain, n = c.steps.length;
    const forward = $('order-forward').checked;
    chainStep = Math.max(0, Math.min(chainStep, n - 1));
    $('jacobian-step-count').textContent = `product ${chainStep + 1} of ${n}`;
    $('jacobian-back').disabled = chainStep === 0;
    $('jacobian-next').disabled = chainStep >= n - 1;
    const holder = $('jacobian-chain');
    holder.textContent = '';
    // The factors as the chain rule writes them: the last step's Jacobian first.
    for (let s = n - 1; s >= 0; s--) {
      const step = c.steps[s];
      const used = forward ? s <= chainStep : s >= n - 1 - chainStep;
      const f = html('div', { class: 'factor' + (used ? ' used' : '') + (forward ? '' : ' reverse'), 'data-step': s });
      f.append(html('span', { class: 'label' }, `∂${step.name}/∂${step.input}  (${shape(step.jacobian)})`), matrix(step.jacobian));
      holder.append(f);
      if (s) holder.append(html('span', { class: 'operator' }, '·'));
    }
    const p = (forward ? c.forward_products : c.reverse_products)[chainStep];
    holder.append(html('span', { class: 'operator' }, '→'));
    const result = html('div', { class: 'factor result', id: 'jacobian-product' });
    result.append(html('span', { class: 'label' }, `∂${p.of}/∂${p.wrt}  (${shape(p.jacobian)})`), matrix(p.jacobian));
    holder.append(result);
    const whole = $('jacobian-whole');
    whole.textContent = '';
    whole.append(`perturb's Jacobian of the whole function, ∂${c.output}/∂${c.input.name}: forward mode`,
      matrix(c.whole.forward), 'reverse mode', matrix(c.whole.reverse));
  }

  async function evaluateChain() {
    const example = $('jacobian-example').value;
    const text = $('jacobian-input').value.trim();
    const input = text ? text.split(/[\s,]+/).filter((s) => s).map(Number) : undefined;
    if (input && input.some((v) => !Number.isFinite(v))) {
      const box = $('jacobian-error');
      box.textContent = 'the input must be numbers separated by commas, e.g. 0.5, -0.25';
      box.hidden = false;
      return;
    }
    if (embeddedJacobians) {
      showChain(jacobianExamples.find((c) => c.id === example));
      return;
    }
    const data = await post('api/jacobian', { example, input });
    if (data.error) {
      $('jacobian-error').textContent = data.error.message;
      $('jacobian-error').hidden = false;
    } else showChain(data);
  }

  // ---- wiring ----

  function tab(name) {
    $('view-graph').hidden = name !== 'graph';
    $('view-jacobian').hidden = name !== 'jacobian';
    $('tab-graph').classList.toggle('active', name === 'graph');
    $('tab-jacobian').classList.toggle('active', name === 'jacobian');
  }

  function stepBy(delta) {
    if (!$('view-jacobian').hidden) {
      if (chain) { chainStep += delta; renderChain(); }
    } else if (report) {
      state.step = delta === Infinity ? stepCount() : delta === -Infinity ? 0 : state.step + delta;
      render();
    }
  }

  $('tab-graph').addEventListener('click', () => tab('graph'));
  $('tab-jacobian').addEventListener('click', () => tab('jacobian'));
  $('first').addEventListener('click', () => stepBy(-Infinity));
  $('back').addEventListener('click', () => stepBy(-1));
  $('next').addEventListener('click', () => stepBy(1));
  $('last').addEventListener('click', () => stepBy(Infinity));
  $('jacobian-back').addEventListener('click', () => stepBy(-1));
  $('jacobian-next').addEventListener('click', () => stepBy(1));
  for (const id of ['mode-forward', 'mode-reverse']) {
    $(id).addEventListener('change', (e) => { state.mode = e.target.value; state.step = 0; render(); });
  }
  for (const id of ['order-forward', 'order-reverse']) {
    $(id).addEventListener('change', () => { chainStep = 0; renderChain(); });
  }
  $('wrt').addEventListener('change', (e) => { state.wrt = Number(e.target.value); state.step = 0; render(); });
  document.addEventListener('keydown', (e) => {
    if (['TEXTAREA', 'INPUT', 'SELECT'].includes(e.target.tagName)) return;
    const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
    if (e.key in moves) { e.preventDefault(); stepBy(moves[e.key]); }
  });
  for (const id of ['expr', 'at']) $(id).addEventListener('input', () => ($('example').value = ''));
  $('input-form').addEventListener('submit', (e) => { e.preventDefault(); evaluate(); });
  $('expr').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); evaluate(); }
  });
  $('jacobian-form').addEventListener('submit', (e) => { e.preventDefault(); evaluateChain(); });
  $('jacobian-example').addEventListener('change', () => { $('jacobian-input').value = ''; evaluateChain(); });

  async function start() {
    if (embeddedReport) {
      // `perturb explain --html`: one expression, no server.
      const r = JSON.parse(embeddedReport.textContent);
      $('expr').value = r.expression;
      $('at').value = r.variables.map((v) => `${v.name}=${num(v.value)}`).join(', ');
      for (const id of ['expr', 'at']) $(id).readOnly = true;
      for (const id of ['example', 'evaluate']) $(id).closest('label, button').hidden = true;
      jacobianExamples = JSON.parse(embeddedJacobians.textContent);
      for (const c of jacobianExamples) $('jacobian-example').append(html('option', { value: c.id }, c.title));
      $('jacobian-input').readOnly = true;
      $('jacobian-evaluate').hidden = true;
      show(r);
      if (jacobianExamples.length) showChain(jacobianExamples[0]);
      evaluated();
      return;
    }
    const examples = await (await fetch('api/examples')).json();
    examples.explain.forEach((ex, k) => $('example').append(html('option', { value: k }, ex.title)));
    $('example').addEventListener('change', (e) => {
      const ex = examples.explain[e.target.value];
      if (!ex) return;
      $('expr').value = ex.expression;
      $('at').value = ex.at;
      evaluate();
    });
    for (const c of examples.jacobian) $('jacobian-example').append(html('option', { value: c.id }, c.title));
    const first = examples.explain[0];
    $('expr').value = first.expression;
    $('at').value = first.at;
    $('example').value = '0';
    evaluateChain();
    evaluate();
  }
  start();
})();
