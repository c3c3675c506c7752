# faultline_embed_text(OUT_CPP NAMESPACE FUNCTION INPUT)
# Generates a .cpp defining `std::string_view NAMESPACE::FUNCTION()` that returns the bytes of
# INPUT (C++20 has no #embed). Regenerated when INPUT changes.
set(FAULTLINE_EMBED_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/embed_text_script.cmake")
function(faultline_embed_text out_cpp ns fn input)
  add_custom_command(
    OUTPUT "${out_cpp}"
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${out_cpp} -DNS=${ns} -DFN=${fn}
            -P "${FAULTLINE_EMBED_SCRIPT}"
    DEPENDS "${input}" "${FAULTLINE_EMBED_SCRIPT}"
    COMMENT "Embedding ${input}"
    VERBATIM)
endfunction()
