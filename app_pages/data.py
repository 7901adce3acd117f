"""Import & export: spreadsheets in (map columns, dry run, import) and the whole database out as a zip."""

from datetime import date

import streamlit as st

from coaching import archive, importer
from coaching.errors import CoachloopError
from db import get_session
from ui.auth import logout
from ui.guard import guard

KIND_NOUN = {"observations": "an observations file", "roster": "a roster"}
KIND_HELP = {
    "observations": "one row per observation: date, teacher, observer, a column per rubric domain",
    "roster": "one row per teacher: teacher, school, grade (email, subject, coach optional)",
}


def switch_kind(kind: str) -> None:
    st.session_state["imp_kind"] = kind


user = guard(__file__)
st.title("Import & export")
tab_import, tab_export = st.tabs(["Import a spreadsheet", "Export & restore"])

with tab_import:
    kind = st.radio(
        "**1. What does the file hold?**",
        importer.KINDS[::-1],
        captions=[KIND_HELP[k] for k in importer.KINDS[::-1]],
        key="imp_kind",
    )
    upload = st.file_uploader("**2. The CSV or Excel file**", type=["csv", "xlsx"], key="imp_file")
    if done := st.session_state.pop("imp_done", None):  # the import just applied, before the rerun
        st.success(done)
    if upload is not None:
        try:
            with get_session() as session:
                df = importer.read_table(upload.getvalue(), upload.name)
                proposed = importer.propose_mapping(list(df.columns), session, kind)
                targets = importer.mapping_targets(session, kind)
                with st.expander("Column mapping", expanded=bool(proposed.unknown)):
                    chosen = {
                        h: st.selectbox(
                            h, targets, index=targets.index(proposed.target(h)), key=f"map_{kind}_{h}"
                        )
                        for h in df.columns
                    }
                overrides = {h: t for h, t in chosen.items() if t != proposed.target(h)}
                plan = importer.plan_file(
                    session=session,
                    user=user,
                    source=upload.getvalue(),
                    filename=upload.name,
                    kind=kind,
                    overrides=overrides,
                )
                for note in plan.notes:
                    st.caption(note)
                if plan.file_problems:
                    others = importer.other_kinds_that_fit(list(df.columns), session, kind)
                    st.error(
                        f"This file does not read as {KIND_NOUN[kind]}: {'; '.join(plan.file_problems)}."
                        + "".join(f" Its columns fit {KIND_NOUN[k]}: choose {k!r} above." for k in others)
                    )
                    for other in others:
                        st.button(f"Read it as {KIND_NOUN[other]}", on_click=switch_kind, args=(other,))
                if plan.rows or not plan.file_problems:  # none are read when a needed column is missing
                    s = plan.summary
                    cols = st.columns(4)
                    for col, (label, key) in zip(
                        cols,
                        [
                            ("Rows", "rows"),
                            ("To create", "create"),
                            ("Already here", "exists"),
                            ("Problems", "problems"),
                        ],
                        strict=True,
                    ):
                        col.metric(label, s[key])
                    st.dataframe(plan.table(), hide_index=True, width="stretch")
                    if plan.problems:  # whole-file ones are said above
                        if row_problems := len(plan.problems) - len(plan.file_problems):
                            st.error(
                                f"{row_problems} problems: fix these rows in the file and upload it again."
                            )
                    elif not s["create"]:
                        st.info(
                            "Everything in this file is already here; importing it again creates nothing."
                        )
                    elif st.button(
                        f"Import {s['create']} row{'s' if s['create'] != 1 else ''}", type="primary"
                    ):
                        result = importer.apply_import(session=session, user=user, plan=plan)
                        # Rerun so the counts and table are planned afresh (now "already here"), not
                        # the plan just applied; the result is shown above them.
                        st.session_state["imp_done"] = importer.describe_result(result)
                        st.rerun()
        except CoachloopError as exc:
            st.error(str(exc))

with tab_export:
    st.subheader("Export everything")
    st.caption(
        "Everything except passwords: a download never carries password hashes. A full backup with "
        "sign-ins is made on the server (`python -m coaching export --with-credentials`)."
    )
    if st.button("Prepare the export", key="exp_go"):
        with get_session() as session:
            st.session_state["export_zip"] = archive.export_zip(session=session, user=user)
    if st.session_state.get("export_zip"):
        st.download_button(
            "Download the zip",
            st.session_state["export_zip"],
            file_name=f"coachloop-export-{date.today().isoformat()}.zip",
            mime="application/zip",
            key="exp_download",
        )
    st.subheader("Restore an export")
    backup = st.file_uploader("Export zip", type=["zip"], key="restore_file")
    replace = st.checkbox("Replace everything in this database with the zip", key="restore_replace")
    typed = st.text_input("Type REPLACE to confirm", key="restore_confirm") if replace else ""
    if st.button("Restore", key="restore_go", disabled=backup is None or (replace and typed != "REPLACE")):
        try:
            with get_session() as session:
                loaded = archive.restore_zip(
                    session=session, user=user, data=backup.getvalue(), replace=replace
                )
            st.success(f"Restored {sum(loaded.values())} rows from {len(loaded)} files.")
            if replace:
                logout()  # the accounts are now the zip's: sign in again with one of them
                st.info("The database was replaced. Sign in again with an account from the export.")
        except CoachloopError as exc:
            st.error(str(exc))
