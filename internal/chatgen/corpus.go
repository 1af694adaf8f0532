package chatgen

// The word lists below are the raw material of the generated chat messages.
// They are constants in spirit: nothing writes to them after package
// initialisation.

var jaSurnames = [...]string{"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"}

var jaGivenNames = [...]string{"陽菜", "大翔", "結衣", "蓮", "さくら", "悠真", "美咲", "颯太", "葵", "湊", "あかり", "翔"}

var enFirstNames = [...]string{"Alice", "Bob", "Carol", "Dave", "Emma", "Frank", "Grace", "Henry", "Isla", "Jack", "Zoë", "Liam"}

var enLastNames = [...]string{"Johnson", "Smith", "Nguyen", "O'Brien", `"Em" Clarke`, "Müller", "Lee", "Okafor", "García", "Kowalski", "Patel", "Brown"}

var jaLogins = [...]string{"sato", "suzuki.h", "takahashi", "tanaka_ren", "ito", "watanabe.y"}

var enLogins = [...]string{"alice", "bob.smith", "cnguyen", "dave", "emma.c", "fmueller"}

var roomNames = [...]string{
	"general", "random", "dev-backend", "dev-frontend", "oncall", "release-train",
	"東京オフィス", "大阪チーム", "雑談", "design", "採用", "incident-2024-11",
	"qa", "マーケティング", "data-eng", "ランチ部",
}

var clients = [...]string{"ios", "android", "web", "desktop"}

var emoji = [...]string{
	"👍", "🎉", "🙏", "😂", "🚀", "🔥", "👀", "✅", "❤️", "🙇", "🍣", "☕",
	"👩‍💻", "👍🏽", "🇯🇵", "🤔", "💯", "🐛",
}

var reactionEmoji = [...]string{"👍", "🎉", "🙏", "😂", "👀", "✅", "❤️", "🙇", "🔥", "💯"}

var jaTimes = [...]string{"9:30", "10時", "13:00", "14時半", "15:00", "17:30", "明日の朝", "来週月曜"}

var enTimes = [...]string{"9:30", "10am", "1pm", "2:30pm", "3pm", "5:30pm", "tomorrow morning", "next Monday"}

var jaItems = [...]string{"議事録の共有", "CIの高速化", "採用面接の日程", "オンボーディング資料", "障害報告書", "見積書の確認", "リリースノート", "負荷試験"}

var enItems = [...]string{"flaky e2e tests", "on-call handover", "Q4 roadmap", "docs cleanup", "the incident review", "billing migration", "load test results", "release notes"}

var jaPlaces = [...]string{"会議室A", "渋谷オフィス", "Zoom", "大阪の拠点", "5階の休憩スペース", "いつもの居酒屋"}

var enPlaces = [...]string{"Room 4B", "the Berlin office", "Zoom", "the big meeting room", "the kitchen", "the usual pub"}

var jaQuotes = [...]string{"仕様通りです", "再現しません", "明日やります", "たぶん大丈夫", "キャッシュのせい"}

var attachmentNames = [...]struct{ kind, name, mime string }{
	{"image", "IMG_2043.jpg", "image/jpeg"},
	{"image", "スクリーンショット 2024-11-24 10.31.05.png", "image/png"},
	{"file", "見積書_v2.pdf", "application/pdf"},
	{"file", "Q3 report (final) v2.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"image", "whiteboard.heic", "image/heic"},
	{"file", "stacktrace.txt", "text/plain"},
	{"video", "demo_ログイン画面.mp4", "video/mp4"},
	{"file", `config\prod.yaml`, "application/yaml"},
}

// Body templates. Placeholders are written {{name}}; no template contains
// "{{" otherwise. Literal text may contain quotes, backslashes, braces, tabs,
// newlines, <, > and &, all of which the encoder must escape.
var jaTemplates = [...]string{
	"おはようございます！今日の定例は{{time}}からです {{emoji}}",
	"{{jname}}さん、PR #{{n}} のレビューお願いできますか？",
	"了解です{{emoji}}",
	"デプロイ完了しました 🎉\n- api: v{{ver}}\n- worker: v{{ver}}\n問題あれば #oncall まで",
	"「{{quote}}」って書いてあるけど、これ本当？",
	"エラーログに \"connection reset by peer\" が {{n}} 件出てます。{{jname}}さん見てもらえますか",
	"パスは C:\\Users\\{{login}}\\Documents\\見積書.xlsx です",
	"明日は{{place}}で打ち合わせです。{{time}}集合でお願いします。",
	"ランチ行く人〜？🍜🍣",
	"今週の振り返り：\n1. {{item}}\n2. {{item}}\n3. {{item}}",
	"{{item}}、{{time}}までに終わらせます！",
	"すみません、{{time}}から{{place}}にいます 🙇",
	"正規表現は ^r\\d+-m\\d+$ で大丈夫だと思います",
	"本日の売上：{{pct}}% 増 📈 お疲れさまでした！",
	"{{jname}}さん ありがとうございます！助かりました{{emoji}}",
	"資料を共有します → https://docs.example.com/d/{{n}}?tab=1&lang=ja",
	"リリース v{{ver}} の件、QA完了です ✅\tチェックリストも更新済み",
	"ちょっと質問です。{{item}}の担当って誰でしたっけ？🤔",
}

var enTemplates = [...]string{
	"Morning all! Standup moved to {{time}} today ☕",
	"@{{ename}} can you take a look at PR #{{n}}? It fixes the \"flaky\" test {{emoji}}",
	"LGTM {{emoji}}",
	"Deployed v{{ver}} to staging 🚀\nPlease report anything weird in #oncall",
	"Heads up: {{item}} is blocked until {{time}}.",
	"Quarterly numbers: revenue +{{pct}}% & costs -{{pct}}% <- not bad!",
	"Who's up for lunch? 🍕🌮",
	"The file is at C:\\shared\\reports\\Q3 (final) v{{ver}}.xlsx",
	"Reminder: retro at {{time}} in {{place}}.\n- what went well\n- what didn't\n- action items",
	"Thanks {{ename}}! ありがとうございます 🙇",
	"Can someone explain why `grep -E '\\d{3}'` matches nothing? {{emoji}}",
	"I'll pick up {{item}} after {{time}}.",
	"Use <b>bold</b> sparingly in the release notes, please.",
	"{{ename}} said \"{{item}} is done\" — is it though? 🤔",
	"Build #{{n}} failed:\n\tjava.lang.OutOfMemoryError: Java heap space\n\tat org.example.Indexer.flush(Indexer.java:{{n}})",
	"Back from {{place}}, catching up on the thread now 👀",
	"PSA: the VPN will be down {{time}} for maintenance.",
	"nice work everyone {{emoji}}{{emoji}}",
}

var jaEditSuffixes = [...]string{
	"（追記：{{time}}に変更になりました）",
	"\n※訂正: 資料は共有フォルダにあります",
	"（編集済み）",
	"\n追記：{{jname}}さんも参加します{{emoji}}",
}

var enEditSuffixes = [...]string{
	" (edit: typo)",
	"\nEDIT: moved to {{time}}",
	" — updated the link",
	"\nUpdate: {{ename}} is on it {{emoji}}",
}
