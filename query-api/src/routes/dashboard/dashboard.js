// The operator dashboard: polls GET /projections and GET /dashboard/summary every second and
// draws what they answer; charts are SVG built here, no library. Every value from the server is
// written with textContent or as an SVG attribute, never as HTML. The retry button calls the
// projector's POST /dead-letters/retry with the operator token typed in (kept for this tab
// only, in sessionStorage).
'use strict';

(() => {
  const POLL_MS = 1000;
  const TOKEN_KEY = 'cqrs-shop.operator-token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const OUTCOMES = ['approved', 'shipped', 'insufficient_stock', 'credit_limit_exceeded', 'cancelled', 'pending'];

  const $ = (id) => document.getElementById(id);
  const projectorUrl = document.querySelector('meta[name="projector-url"]').content.replace(/\/+$/, '');
  let newestSeen = null;
  let pollTimer = null;

  // --- small DOM helpers -------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setText(id, value) {
    const node = $(id);
    const text = String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  const number = (value) => Number(value || 0).toLocaleString('en-US');
  const time = (iso) => new Date(iso).toLocaleTimeString('en-GB');
  const shortId = (id) => String(id).slice(0, 8) + '…';

  // --- fetching ----------------------------------------------------------------------------

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!response.ok) {
      let detail = '';
      try { detail = (await response.json()).detail || ''; } catch (_) { /* not problem+json */ }
      throw new Error(`${path} answered ${response.status}${detail ? ': ' + detail : ''}`);
    }
    return response.json();
  }

  async function poll() {
    try {
      const [projections, summary] = await Promise.all([getJson('/projections'), getJson('/dashboard/summary')]);
      drawHeader(projections, summary);
      drawRate(summary.event_rate, summary.generated_at);
      drawOutcomes(summary.orders);
      drawSubscriptions(projections.items);
      drawAdmission(summary.admission, projections.items);
      drawDeadLetters(summary.dead_letters);
      drawEvents(summary.recent_events);
    } catch (error) {
      const connection = $('connection');
      connection.className = 'connection down';
      connection.textContent = `cannot read the query-api: ${error.message}`;
    } finally {
      clearTimeout(pollTimer); // a poll the retry button started may have ended meanwhile
      pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  // --- panels ------------------------------------------------------------------------------

  function drawHeader(projections, summary) {
    const connection = $('connection');
    connection.className = 'connection live';
    connection.textContent = 'live';
    setText('head-position', projections.head_position);
    setText('updated-at', time(summary.generated_at));
  }

  // Events per second as bars, decided orders per second as a line, over the window.
  function drawRate(rate, generatedAt) {
    const span = rate.window_seconds;
    const end = Math.floor(new Date(generatedAt).getTime() / 1000);
    const seconds = Array.from({ length: span }, () => ({ events: 0, placed: 0, decided: 0 }));
    for (const second of rate.seconds) {
      const index = span - 1 - (end - Math.floor(new Date(second.at).getTime() / 1000));
      if (index >= 0 && index < span) seconds[index] = second;
    }
    const lastTen = seconds.slice(-10);
    const perSecond = (key) => (lastTen.reduce((sum, s) => sum + s[key], 0) / lastTen.length).toFixed(1);
    setText('rate-events', perSecond('events'));
    setText('rate-placed', perSecond('placed'));
    setText('rate-decided', perSecond('decided'));

    const chart = $('rate-chart');
    const [width, height, left, bottom, top] = [960, 200, 48, 22, 8];
    const plotWidth = width - left - 8;
    const plotHeight = height - bottom - top;
    const peak = Math.max(1, ...seconds.map((s) => s.events));
    const scale = niceCeiling(peak);
    const x = (i) => left + (i * plotWidth) / span;
    const y = (value) => top + plotHeight - (value / scale) * plotHeight;
    const nodes = [];
    for (const fraction of [0, 0.5, 1]) {
      const value = scale * fraction;
      nodes.push(svg('line', { class: 'grid', x1: left, x2: width - 8, y1: y(value), y2: y(value) }));
      nodes.push(svg('text', { x: left - 6, y: y(value) + 4, 'text-anchor': 'end' }, number(value)));
    }
    const barWidth = Math.max(1, plotWidth / span - 1);
    seconds.forEach((s, i) => {
      if (s.events > 0) {
        nodes.push(svg('rect', { class: 'bar', x: x(i), y: y(s.events), width: barWidth, height: y(0) - y(s.events) }));
      }
    });
    const points = seconds.map((s, i) => `${(x(i) + barWidth / 2).toFixed(1)},${y(s.decided).toFixed(1)}`);
    nodes.push(svg('polyline', { class: 'line', points: points.join(' ') }));
    for (const [i, label] of [[0, `-${span} s`], [span / 2, `-${span / 2} s`], [span - 1, 'now']]) {
      const anchor = i === 0 ? 'start' : i === span - 1 ? 'end' : 'middle';
      nodes.push(svg('text', { x: x(i) + (i === span - 1 ? barWidth : 0), y: height - 4, 'text-anchor': anchor }, label));
    }
    chart.replaceChildren(...nodes);
  }

  // 1, 2, 5, 10, 20, 50, ...: the smallest at or above value.
  function niceCeiling(value) {
    const magnitude = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= value);
  }

  // One stacked bar of every order by outcome, and the counts beside it.
  function drawOutcomes(orders) {
    const reasons = orders.rejected_by_reason || {};
    const counts = {
      approved: orders.approved,
      shipped: orders.shipped,
      insufficient_stock: reasons.insufficient_stock || 0,
      credit_limit_exceeded: reasons.credit_limit_exceeded || 0,
      cancelled: orders.cancelled,
      pending: orders.pending,
    };
    setText('orders-total', number(orders.total));
    setText('orders-pending', number(orders.pending));
    for (const outcome of OUTCOMES) setText(`count-${outcome}`, number(counts[outcome]));

    const [width, height] = [600, 36];
    const nodes = [];
    if (orders.total === 0) {
      nodes.push(svg('rect', { class: 'segment none', x: 0, y: 4, width, height: height - 8, rx: 4 }));
    } else {
      let offset = 0;
      for (const outcome of OUTCOMES) {
        const share = (counts[outcome] / orders.total) * width;
        if (share <= 0) continue;
        const segment = svg('rect', { class: `segment ${outcome}`, x: offset, y: 4, width: share, height: height - 8 });
        segment.appendChild(svg('title', {}, `${outcome.replaceAll('_', ' ')}: ${number(counts[outcome])}`));
        nodes.push(segment);
        offset += share;
      }
    }
    $('outcome-chart').replaceChildren(...nodes);
  }

  function drawSubscriptions(items) {
    const rows = items.map((item) => {
      const row = document.createElement('tr');
      const name = cell(item.name, 'mono');
      if (item.partition !== undefined && item.partition !== null) {
        name.textContent = `${item.name} #${item.partition}`;
      }
      if (item.owner) {
        const owner = document.createElement('span');
        owner.className = 'small';
        owner.textContent = `owner ${item.owner}`;
        name.appendChild(owner);
      }
      row.appendChild(name);
      row.appendChild(cell(number(item.position), 'number mono'));
      let lag = `${number(item.lag_events)} events`;
      if (typeof item.lag_seconds === 'number') lag += ` · ${item.lag_seconds.toFixed(1)} s`;
      row.appendChild(cell(lag, 'number'));
      const status = document.createElement('td');
      const badge = document.createElement('span');
      badge.className = `state ${item.status}`;
      badge.textContent = item.status.replaceAll('_', ' ');
      status.appendChild(badge);
      if (item.last_error) {
        const error = document.createElement('span');
        error.className = 'small';
        error.textContent = item.last_error;
        status.appendChild(error);
      }
      row.appendChild(status);
      row.appendChild(cell(number(item.dead_letters), 'number'));
      row.dataset.subscription = item.name;
      return row;
    });
    $('subscriptions').tBodies[0].replaceChildren(...rows);
  }

  // The command-api refuses new orders (503) while a saga subscription lags more events than
  // MAX_SAGA_LAG_EVENTS; it reads the same lag from the same checkpoints.
  function drawAdmission(admission, items) {
    const line = $('admission');
    const bound = admission.max_saga_lag_events;
    if (bound === undefined || bound === null) {
      line.className = 'message info';
      line.textContent = 'admission: every order accepted (MAX_SAGA_LAG_EVENTS not set)';
      return;
    }
    const saga = items.filter((item) => admission.saga_subscriptions.includes(item.name));
    const lag = Math.max(0, ...saga.map((item) => item.lag_events));
    if (lag > bound) {
      line.className = 'message error';
      line.textContent = `admission: refusing new orders (503): the saga lags ${number(lag)} events, more than the bound of ${number(bound)}`;
    } else {
      line.className = 'message ok';
      line.textContent = `admission: accepting orders: the saga lags ${number(lag)} of at most ${number(bound)} events`;
    }
  }

  function drawDeadLetters(deadLetters) {
    const badge = $('dead-letter-count');
    badge.textContent = String(deadLetters.count);
    badge.className = deadLetters.count > 0 ? 'badge alert' : 'badge';
    $('no-dead-letters').hidden = deadLetters.count > 0;
    $('dead-letters').hidden = deadLetters.count === 0;
    const rows = deadLetters.items.map((letter) => {
      const row = document.createElement('tr');
      row.appendChild(cell(letter.subscription, 'mono'));
      row.appendChild(cell(String(letter.position), 'number mono'));
      row.appendChild(cell(letter.event_type));
      const stream = cell(shortId(letter.stream_id), 'mono');
      stream.title = letter.stream_id;
      row.appendChild(stream);
      row.appendChild(cell(String(letter.attempts), 'number'));
      row.appendChild(cell(time(letter.parked_at)));
      row.appendChild(cell(letter.error, 'error'));
      return row;
    });
    $('dead-letters').tBodies[0].replaceChildren(...rows);
  }

  function drawEvents(events) {
    const previous = newestSeen;
    const rows = events.map((event) => {
      const row = document.createElement('tr');
      if (previous !== null && event.position > previous) row.className = 'new';
      row.appendChild(cell(String(event.position), 'number mono'));
      row.appendChild(cell(time(event.recorded_at)));
      const stream = cell(`${event.stream_type} ${shortId(event.stream_id)}`, 'mono');
      stream.title = event.stream_id;
      row.appendChild(stream);
      row.appendChild(cell(event.type));
      row.appendChild(cell(String(event.version), 'number'));
      const json = JSON.stringify(event.data);
      const data = cell(json.length > 160 ? json.slice(0, 160) + '…' : json, 'data mono');
      data.title = json;
      row.appendChild(data);
      return row;
    });
    if (events.length > 0) newestSeen = Math.max(previous ?? 0, events[0].position);
    $('recent-events').tBodies[0].replaceChildren(...rows);
  }

  // --- the retry button --------------------------------------------------------------------

  function say(kind, text) {
    const message = $('retry-message');
    message.className = `message ${kind}`;
    message.textContent = text;
  }

  async function retryDeadLetters(event) {
    event.preventDefault();
    const token = $('operator-token').value.trim();
    if (!token) {
      say('error', 'Enter the operator token first: the projector\'s OPERATOR_TOKEN (scripts/run prints it).');
      $('operator-token').focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    const button = $('retry-button');
    button.disabled = true;
    say('info', 'Retrying the dead letters…');
    try {
      const response = await fetch(`${projectorUrl}/dead-letters/retry`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
      let body = {};
      try { body = await response.json(); } catch (_) { /* no JSON body */ }
      if (response.status === 401) {
        say('error', 'The projector refused the operator token (401): check it against OPERATOR_TOKEN.');
      } else if (response.status === 403) {
        say('error', `Operator actions are disabled (403): ${body.detail || 'the projector has no OPERATOR_TOKEN'}.`);
      } else if (!response.ok) {
        say('error', `The retry failed (${response.status}): ${body.detail || response.statusText}.`);
      } else if (body.still_failing > 0) {
        say('warn', `Retried: ${body.processed} processed, ${body.still_failing} still failing (see their errors below).`);
      } else {
        say('ok', `Retried: ${body.processed} processed, none still failing.`);
      }
    } catch (error) {
      say('error', `Cannot reach the projector at ${projectorUrl} (${error.message}): is it running, and does DASHBOARD_ORIGINS allow ${location.origin}?`);
    } finally {
      button.disabled = false;
      poll();
    }
  }

  // --- start -------------------------------------------------------------------------------

  $('projector-url').textContent = projectorUrl;
  $('operator-token').value = sessionStorage.getItem(TOKEN_KEY) || '';
  $('retry-form').addEventListener('submit', retryDeadLetters);
  poll();
})();
