# cmake -DINPUT=file -DOUTPUT=file.cpp -DNS=namespace -DFN=function -P embed_text_script.cmake
file(READ "${INPUT}" content HEX)
string(LENGTH "${content}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE "${OUTPUT}.tmp"
  "// generated from ${INPUT}; do not edit\n"
  "#include <string_view>\n"
  "namespace ${NS} {\n"
  "namespace {\nconstexpr char data[] = {${bytes} 0};\n}\n"
  "std::string_view ${FN}() { return {data, ${len}}; }\n"
  "} // namespace ${NS}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
