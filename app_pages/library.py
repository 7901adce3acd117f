"""Rubric & library: admins publish rubric versions, add blocks and curate moves; coaches propose moves."""

import streamlit as st

from coaching import library_admin, rubric_admin
from coaching.errors import CoachloopError
from coaching.rubric_admin import DomainEdit
from db import get_session
from ui.guard import guard

user = guard(__file__)
admin = user.role == "admin"
st.title("Rubric & action-step library")
with get_session() as session:
    rv = rubric_admin.current_version(session=session, user=user)
    edits = rubric_admin.current_edits(session=session, user=user)
    history = rubric_admin.versions(session=session, user=user)
    blocks = rubric_admin.blocks(session=session, user=user)
    wanted = ("active", "proposed", "retired") if admin else ("active", "proposed")
    moves = library_admin.list_moves(session=session, user=user, statuses=wanted)
codes = [e.code for e in edits if not e.retired]
tab_rubric, tab_library = st.tabs([f"Rubric (version {rv.version})", "Action-step library"])


def run(action, ok: str) -> None:
    """Call a domain write; on success redraw with fresh data and say so, else show the error."""
    try:
        with get_session() as session:
            action(session)
    except CoachloopError as exc:
        st.error(str(exc))
        return
    st.session_state["library_flash"] = ok
    st.rerun()


if flash := st.session_state.pop("library_flash", None):
    st.success(flash)


with tab_rubric:
    st.caption(
        f"{rv.name} · published {rv.published_at:%Y-%m-%d} · versions: {', '.join(str(v.version) for v in history)}"
    )
    with st.form("rubric"):
        new_edits = []
        for e in edits:
            with st.expander(f"{e.code} · {e.name}" + (" (retired)" if e.retired else "")):
                new_edits.append(
                    DomainEdit(
                        e.code,
                        st.text_input("Name", e.name, key=f"d_name_{e.code}", disabled=not admin),
                        st.text_area("Description", e.description, key=f"d_desc_{e.code}", disabled=not admin),
                        st.text_area("Look-fors (one per line, 2-4)", "\n".join(e.look_fors), key=f"d_lf_{e.code}",
                                     disabled=not admin).splitlines(),
                        st.checkbox("Retired", e.retired, key=f"d_ret_{e.code}", disabled=not admin),
                    )
                )  # fmt: skip
        if admin:
            st.markdown("**Add a domain** (leave the code empty to add none)")
            c = st.columns([1, 3])
            add = DomainEdit(c[0].text_input("Code", key="new_code"), c[1].text_input("Name", key="new_name"),
                             st.text_area("Description", key="new_desc"),
                             st.text_area("Look-fors (one per line, 2-4)", key="new_lf").splitlines())  # fmt: skip
            name = st.text_input("Rubric name", rv.name, key="rubric_name")
        publish = st.form_submit_button("Publish a new version", disabled=not admin, type="primary")
    if admin and publish:
        domains = new_edits + ([add] if add.code.strip() else [])
        run(lambda s: rubric_admin.publish_rubric(session=s, by=user, domains=domains, name=name),
            "Published. Past observations keep the version they were scored with.")  # fmt: skip
    st.subheader("Instructional blocks")
    st.dataframe([{"code": b.code, "name": b.name, "active": b.active} for b in blocks], hide_index=True)
    if admin:
        with st.form("block"):
            c = st.columns([1, 3])
            code, bname = c[0].text_input("Code", key="block_code"), c[1].text_input("Name", key="block_name")
            if st.form_submit_button("Add block"):
                run(
                    lambda s: rubric_admin.add_block(session=s, by=user, code=code, name=bname),
                    f"Added {bname}.",
                )

with tab_library:
    rows = [
        {"id": m.id, "code": m.code, "domain": m.domain_code, "title": m.title, "status": m.status}
        for m in moves
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    proposed = [m for m in moves if m.status == "proposed"]
    if admin:
        pick = st.selectbox(
            "Move", moves, format_func=lambda m: f"{m.code} · {m.title} ({m.status})", key="mv_pick"
        )
        if pick is not None:
            with st.form("move_edit"):
                title = st.text_input("Title", pick.title, key=f"mv_title_{pick.id}")
                text = st.text_area("Move", pick.move, key=f"mv_move_{pick.id}")
                look = st.text_area("Look-for", pick.look_for, key=f"mv_look_{pick.id}")
                verbs = {
                    "active": ["save", "retire"],
                    "retired": ["save", "restore"],
                    "proposed": ["approve", "decline"],
                }
                verb = st.radio("Action", verbs[pick.status], horizontal=True, key=f"mv_verb_{pick.id}")
                if st.form_submit_button("Apply"):
                    calls = {
                        "save": lambda s: library_admin.edit_move(session=s, by=user, move_id=pick.id, title=title,
                                                                  move=text, look_for=look),
                        "retire": lambda s: library_admin.retire_move(session=s, by=user, move_id=pick.id),
                        "restore": lambda s: library_admin.restore_move(session=s, by=user, move_id=pick.id),
                        "approve": lambda s: library_admin.approve_move(session=s, by=user, move_id=pick.id),
                        "decline": lambda s: library_admin.decline_move(session=s, by=user, move_id=pick.id),
                    }  # fmt: skip
                    run(calls[verb], f"{pick.code}: {verb} done.")
    elif proposed:
        st.caption(f"Your proposals waiting for an admin: {', '.join(m.title for m in proposed)}")
    with st.form("move_new", clear_on_submit=True):
        st.markdown("**Add a move**" if admin else "**Propose a move** (an admin approves it)")
        dom = st.selectbox("Domain", codes, key="new_mv_domain")
        title, text = st.text_input("Title", key="new_mv_title"), st.text_area("Move", key="new_mv_move")
        look = st.text_area("Look-for", key="new_mv_look")
        if st.form_submit_button("Add" if admin else "Propose"):
            create = library_admin.add_move if admin else library_admin.propose_move
            run(lambda s: create(session=s, by=user, domain_code=dom, title=title, move=text, look_for=look),
                f"{'Added' if admin else 'Proposed'} {title!r}.")  # fmt: skip
