% rebase('layout.tpl', title=title, session=session, flash=flash)
<section class="card narrow">
<h1>Send a message</h1>
% if result:
  % for e in result.get('errors', []):
  <p class="error">{{e}}</p>
  % end
  % for i in result.get('ids', []):
  <p class="ok">Accepted: <a href="/ui/messages/{{i}}">{{i}}</a></p>
  % end
% end
<form method="post" action="/ui/send" id="send-form">
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <label>To <input name="recipient" value="{{values.get('recipient', '')}}" placeholder="+36201234567, +36301234567" required></label>
  <label>Sender <input name="sender" value="{{values.get('sender', '')}}" placeholder="(the modem's number)"></label>
  <label>Text <textarea name="text" rows="5" required data-counter="count">{{values.get('text', '')}}</textarea></label>
  <p class="hint" id="count"></p>
  <button type="submit" id="send-button">Send</button>
</form>
</section>
