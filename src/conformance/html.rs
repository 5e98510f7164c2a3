//! The static HTML matrix: providers × cases coloured by grade; a click shows the evidence.
//! One self-contained file (data inlined), so it opens straight from the file system.

use crate::conformance::catalogue::catalogue;
use crate::conformance::Matrix;
use serde_json::Value;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4;text-align:left}td.g{cursor:pointer;text-align:center;font-weight:600}
.OK{background:#c8ecc8}.INFORMATIONAL{background:#d6e6f8}.NON-STRICT{background:#fbe8b0}
.UNSUPPORTED{background:#eee;color:#888}.FAILED{background:#f6c0c0}
#ev{margin-top:20px;padding:12px;border:1px solid #ccc;background:#fafafa;white-space:pre-wrap}
small{color:#666}";

const SCRIPT: &str = "const D=JSON.parse(document.getElementById('data').textContent);
function show(p,c){const r=D.providers[p].cases[c];const k=D.cases.find(x=>x.id==c);
let t=p+' — '+c+' '+k.title+'\\nExpected: '+k.expectation+'\\n\\nGrade: '+r.grade+'\\n'+r.summary+'\\n';
if(r.auth)t+='auth: '+r.auth+'   driver ran '+r.duration_ms+' ms\\n';t+='\\nEvidence:\\n';
for(const f of r.evidence){t+='  ['+f.grade+'] '+f.text+(f.seqs?' (journal seq '+f.seqs.join(', ')+')':'')+'\\n';}
const el=document.getElementById('ev');el.textContent=t;
if(r.artifacts){for(const f of ['journal.jsonl','stdout.txt','stderr.txt','plan.json','scenario.toml']){
const a=document.createElement('a');a.href=r.artifacts+'/'+f;a.textContent=f;el.append(' ',a);}}}";

/// Renders the page; `index` is the `index.json` value, inlined for the click handler.
pub fn render(m: &Matrix, index: &Value) -> String {
    let cat = catalogue();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>apnsim conformance</title>\
         <style>{STYLE}</style></head><body><h1>apnsim conformance</h1>\
         <p><small>Click a cell for its evidence. Grades: OK, INFORMATIONAL, NON-STRICT \
         (works, against Apple's advice), UNSUPPORTED, FAILED (lost, duplicated, hang, crash, \
         wrong report).</small></p><table><tr><th>case</th>"
    );
    for p in &m.providers {
        let _ = write!(
            s,
            "<th>{}<br><small>{} {}</small></th>",
            esc(p.name()),
            esc(&p.spec.library),
            esc(&p.spec.version)
        );
    }
    s.push_str("</tr>\n");
    for id in &m.cases {
        let case = cat.iter().find(|c| c.id == *id);
        let _ = write!(
            s,
            "<tr><th title=\"{}\">{} {}</th>",
            esc(case.map_or("", |c| c.expectation)),
            esc(id),
            esc(case.map_or("", |c| c.title))
        );
        for p in &m.providers {
            match m
                .results
                .iter()
                .find(|r| r.provider == p.name() && r.case == *id)
            {
                Some(r) => {
                    let _ = write!(
                        s,
                        "<td class=\"g {g}\" title=\"{sum}\" onclick=\"show('{p}','{id}')\">{g}</td>",
                        g = r.grade.as_str(),
                        sum = esc(&r.summary),
                        p = esc(p.name()),
                        id = esc(id)
                    );
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    // `</` cannot appear inside the inlined JSON, or the script element would end early.
    let data = index.to_string().replace("</", "<\\/");
    let _ = writeln!(
        s,
        "</table><div id=\"ev\">Click a cell.</div>\
         <script id=\"data\" type=\"application/json\">{data}</script>\
         <script>{SCRIPT}</script></body></html>"
    );
    s
}
