% rebase('layout.tpl', title=title, session=session, flash=flash)
<section class="card">
<h1>Connections</h1>
<div class="scroll"><table id="connections">
<tr><th>Name</th><th>Type</th><th>State</th><th></th></tr>
% for c in connections:
<tr><td>{{c['name']}} {{('(' + c['slot'] + ')') if c['slot'] else ''}}</td><td>{{c['type']}}</td>
  <td><span class="badge">{{c['state']}}</span></td>
  <td class="actions">
  % if c['modem'] and c['state'] != 'stopped':
    <form method="post" action="/ui/admin/reset" class="inline" data-confirm="Reset {{c['name']}}?">
      <input type="hidden" name="csrf" value="{{session.csrf}}"><input type="hidden" name="name" value="{{c['name']}}">
      <button type="submit">Reset</button></form>
  % end
    <form method="post" action="/ui/admin/connection" class="inline" data-confirm="{{'Start' if c['state'] == 'stopped' else 'Stop'}} {{c['name']}}?">
      <input type="hidden" name="csrf" value="{{session.csrf}}"><input type="hidden" name="name" value="{{c['name']}}">
      <input type="hidden" name="to" value="{{'start' if c['state'] == 'stopped' else 'stop'}}">
      <button type="submit">{{'Start' if c['state'] == 'stopped' else 'Stop'}}</button></form>
  </td></tr>
% end
</table></div>
% reports = [c for c in connections if c['report_url']]
% if reports:
<h3>Delivery report URLs</h3>
<p>Give each HTTP Client connection's provider its URL; it adds the message reference and
the status (the connection's <code>reportidparam</code> and <code>reportstatusparam</code>).
Reports without the token are refused.</p>
<ul id="report-urls">
% for c in reports:
<li>{{c['name']}}: <code>{{c['report_url']}}</code></li>
% end
</ul>
% end
% intakes = [c for c in connections if c.get('intake_url')]
% if intakes:
<h3>HTTP Server intake URLs</h3>
<p>Give each HTTP Server connection's provider its URL for incoming SMS and delivery
reports. With an <code>accesstoken</code> every request must carry it as <code>token</code>.</p>
<ul id="intake-urls">
% for c in intakes:
<li>{{c['name']}}: <code>{{c['intake_url']}}</code>
% if c['intake_open']:
<br><strong>Open: {{c['intake_open']}}</strong>
% end
</li>
% end
</ul>
% end
</section>

<section class="card">
<h2>USSD</h2>
<form method="post" action="/ui/admin/ussd" class="search">
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <select name="slot">
  % for c in connections:
    % if c['modem']:
    <option value="{{c['slot'] or c['name']}}">{{c['slot'] or c['name']}}</option>
    % end
  % end
  </select>
  <input name="code" placeholder="*100#" required>
  <button type="submit">Run</button>
</form>
% if ussd:
  % if ussd.get('error'):
  <p class="error" id="ussd-reply">{{ussd['error']}}</p>
  % else:
  <p class="ok" id="ussd-reply">{{ussd['slot']}} {{ussd['code']}}: {{ussd['reply']}}</p>
  % end
% end
</section>

<section class="card">
<h2>Users and credits</h2>
<div class="scroll"><table id="users">
<tr><th>User</th><th>Role</th><th>State</th><th>Credits</th><th></th></tr>
% for u, balance, unlimited in users:
<tr><td>{{u.name}}</td><td>{{'admin' if u.admin else 'user'}}</td><td>{{'enabled' if u.enabled else 'disabled'}}</td>
  <td>{{'unlimited' if unlimited else balance}}</td>
  <td class="actions">
    <form method="post" action="/ui/admin/credits" class="inline">
      <input type="hidden" name="csrf" value="{{session.csrf}}"><input type="hidden" name="user" value="{{u.name}}">
      <input name="amount" size="6" placeholder="100">
      <select name="how"><option value="set">set</option><option value="add">add</option>
        <option value="unlimited">unlimited</option><option value="metered">metered</option></select>
      <button type="submit">Credits</button></form>
    % if u.name != session.user:
    <form method="post" action="/ui/admin/user" class="inline">
      <input type="hidden" name="csrf" value="{{session.csrf}}"><input type="hidden" name="user" value="{{u.name}}">
      <input type="hidden" name="op" value="{{'disable' if u.enabled else 'enable'}}">
      <button type="submit">{{'Disable' if u.enabled else 'Enable'}}</button></form>
    % end
  </td></tr>
% end
</table></div>
<h3>New user</h3>
<form method="post" action="/ui/admin/user" class="search">
  <input type="hidden" name="csrf" value="{{session.csrf}}"><input type="hidden" name="op" value="create">
  <input name="user" placeholder="name" required>
  <input name="password" type="password" placeholder="password (8+ characters)" required>
  <label class="check"><input type="checkbox" name="admin"> admin</label>
  <button type="submit">Create</button>
</form>
</section>

% if demo:
<section class="card">
<h2>Demo: inject a fault</h2>
<form method="post" action="/ui/admin/fault" class="search" id="fault-form">
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <select name="slot">
  % for c in connections:
    % if c['modem']:
    <option value="{{c['slot']}}">{{c['slot']}}</option>
    % end
  % end
  </select>
  <select name="fault">
  % for f in ('hang', 'deregister', 'cms500', 'unplug', 'garbage', 'slow', 'simbusy', 'none'):
    <option value="{{f}}">{{f}}</option>
  % end
  </select>
  <button type="submit" id="fault-button">Inject</button>
</form>
</section>
% end
