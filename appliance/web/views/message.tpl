% rebase('layout.tpl', title=title, session=session, flash=flash)
% from appliance.web.dashboard_data import when
<section class="card" id="live"{{!' data-refresh="2"' if live else ''}}>
<h1>Message <small>{{message['id']}}</small></h1>
<dl class="wide">
  <dt>State</dt><dd><span class="badge state-{{message['state']}}" id="message-state">{{message['state']}}</span>
    {{message['reason']}}</dd>
  <dt>To</dt><dd>{{message['recipient']}}</dd>
  <dt>From</dt><dd>{{message['originator'] or '(modem number)'}}</dd>
  <dt>User</dt><dd>{{message['user']}} via {{message['dialect'] or 'api'}}</dd>
  <dt>Connection</dt><dd>{{message['connection'] or '–'}}</dd>
  <dt>Text</dt><dd class="text">{{message['body']}}</dd>
</dl>
<h2>Timeline (UTC)</h2>
<ol class="timeline" id="timeline">
% for step in timeline:
  <li><time>{{when(step['at'])}}</time> <b>{{step['what']}}</b> {{step['detail']}}</li>
% end
</ol>
</section>
