% rebase('layout.tpl', title=title, session=session, flash=flash)
% from appliance.web.dashboard_data import when, mask_number
<div id="live" data-refresh="3">
% if alerts:
<section class="card alerts" id="alerts">
<h2>Alerts</h2>
<ul>
% for a in alerts:
  <li class="{{a.status}}"><b>{{a.component}}</b>: {{a.status}} — {{a.reason}}</li>
% end
</ul>
</section>
% end

<section class="card">
<h2>Modems</h2>
<div class="grid">
% for m in status.get('modems', []):
  <article class="modem state-{{m['state']}}" id="modem-{{m['slot'] or m['name']}}">
    <h3>{{m['slot'] or m['name']}} <span class="badge" data-field="state">{{m['state']}}</span></h3>
    <dl>
      <dt>Signal</dt><dd>{{m['signal']['dbm'] if m['signal']['dbm'] is not None else '–'}} dBm</dd>
      <dt>Network</dt><dd>{{m['operator'] or '–'}} ({{m['registration']}})</dd>
      <dt>Balance</dt><dd>{{m['balance'] if m['balance'] is not None else '–'}}
        % if m.get('balance_at'):
        <small>read {{when(m['balance_at'])}}</small>
        % end
      </dd>
      <dt>Today</dt><dd>{{m['sent_today']}} sent{{(' of ' + str(m['daily_limit'])) if m['daily_limit'] else ''}}</dd>
      <dt>Since start</dt><dd>{{m['sent']}} sent, {{m['failed']}} failed, {{m['received']}} received, {{m['reports']}} reports</dd>
      <dt>Recoveries</dt><dd>{{', '.join(f'{k}: {v}' for k, v in m['recoveries'].items()) or 'none'}}; {{m['resets_last_hour']}} resets in the last hour</dd>
      % if m['last_error']:
      <dt>Last error</dt><dd class="error">{{m['last_error']}}</dd>
      % end
    </dl>
  </article>
% end
% if not status.get('modems'):
  <p>No modem is running.</p>
% end
</div>
</section>

% if status.get('uplinks') or stopped:
<section class="card">
<h2>Uplinks and other connections</h2>
<table>
<tr><th>Name</th><th>State</th><th>Window</th><th>Counts</th><th>Last error</th></tr>
% for u in status.get('uplinks', []):
<tr><td>{{u.get('name')}}</td><td><span class="badge">{{u.get('state')}}</span></td>
  <td>{{(u.get('window') or {}).get('in_use', '')}}/{{(u.get('window') or {}).get('size', '')}}</td>
  <td>{{', '.join(f'{k} {v}' for k, v in (u.get('counts') or {}).items() if v)}}</td>
  <td>{{u.get('last_error') or ''}}</td></tr>
% end
% for name in stopped:
<tr><td>{{name}}</td><td><span class="badge">stopped</span></td><td></td><td></td><td></td></tr>
% end
</table>
</section>
% end

<section class="card">
<h2>Queue</h2>
<p id="queue">{{by_state.get('queued', 0) + by_state.get('sending', 0)}} waiting,
  {{by_state.get('scheduled', 0)}} scheduled;
  oldest {{'%.0fs' % oldest if oldest is not None else '–'}}</p>
<p class="states">
% for state, n in sorted(by_state.items()):
  % if n:
  <span class="badge">{{state}} {{n}}</span>
  % end
% end
</p>
% if refused:
<p id="refused">Refused since the start (bad input, credit, do-not-disturb, logins; the log
  has a line for the first of each kind):
% for source, n in sorted(refused.items()):
  <span class="badge">{{source}} {{n}}</span>
% end
</p>
% end
<h3>Sent in the last hour: {{throughput['total']}} parts</h3>
<div class="bars">
% for name, bins in throughput['bins'].items():
  <div class="barrow"><span class="barname">{{name}}</span>
  % for n in bins:
    <span class="bar h{{int(10 * n / throughput['peak'])}}" title="{{n}} in {{throughput['bin_minutes']}} min"></span>
  % end
  </div>
% end
</div>
</section>
</div>
